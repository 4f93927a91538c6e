package admin

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// graceTerm is one term of a twitter-util duration: 10.seconds, 1.minute,
// -500.milliseconds.
var graceTerm = regexp.MustCompile(`^([+-]?)(\d+)\.([a-z]+)$`)

// graceUnits are twitter-util's unit names (singular and plural).
var graceUnits = map[string]time.Duration{
	"nanosecond": time.Nanosecond, "microsecond": time.Microsecond, "millisecond": time.Millisecond,
	"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour,
}

// parseGrace parses the grace parameter of /admin/shutdown. Linkerd
// (twitter-server) takes a twitter-util duration such as 10.seconds or
// 1.minute+30.seconds; Go's form (10s, 1m30s) is accepted as well. A
// negative or unparsable duration is an error worded as twitter-server
// words it.
func parseGrace(v string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("could not parse 'grace' parameter: %s is not a valid duration (examples: 10.seconds, 1.minute+30.seconds, 10s)", strconv.Quote(v))
	}
	s := strings.ToLower(strings.TrimSpace(v))
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return bad()
		}
		return d, nil
	}
	if s == "" {
		return bad()
	}
	var total time.Duration
	// Split before each sign, keeping it with its term: "1.minute+30.seconds".
	start := 0
	for i := 1; i <= len(s); i++ {
		if i < len(s) && s[i] != '+' && s[i] != '-' {
			continue
		}
		m := graceTerm.FindStringSubmatch(s[start:i])
		start = i
		if m == nil {
			return bad()
		}
		unit, ok := graceUnits[strings.TrimSuffix(m[3], "s")]
		if !ok {
			return bad()
		}
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil || n > int64(1<<62)/int64(unit) {
			return bad()
		}
		d := time.Duration(n) * unit
		if m[1] == "-" {
			d = -d
		}
		total += d
		if total > 1<<62 || total < -(1<<62) {
			return bad()
		}
	}
	if total < 0 {
		return bad()
	}
	return total, nil
}
