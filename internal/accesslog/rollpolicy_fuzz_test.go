package accesslog

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseRollPolicy: any httpAccessLogRollPolicy value is a policy or
// an error quoting it; an accepted size is positive and no larger than
// the number written, whatever the platform's float conversion does.
func FuzzParseRollPolicy(f *testing.F) {
	for _, s := range []string{"", "never", "Hourly", " daily ", "weekly(0)", "weekly(7)", "10.megabytes", "1.5 gb", "4096",
		"0", "0.1b", "99999999999999999999gb", "9223372036854775807", "9223372036854775808", "8589934592gb", "1.kb", "-1mb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseRollPolicy(s)
		if err != nil {
			if !strings.Contains(err.Error(), "roll policy") {
				t.Fatalf("ParseRollPolicy(%q) error %q does not say what it parsed", s, err)
			}
			return
		}
		if p.size < 0 || p.every < 0 {
			t.Fatalf("ParseRollPolicy(%q) = %+v", s, p)
		}
		if p.size > 0 && (p.every != 0 || p.weekly) {
			t.Fatalf("ParseRollPolicy(%q) = %+v: both a size and a period", s, p)
		}
		if m := reSize.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s))); m != nil && p.size > 0 {
			n, _ := strconv.ParseFloat(m[1], 64)
			if n*(1<<30) >= 1<<63 && m[2] != "" && m[2][0] == 'g' {
				t.Fatalf("ParseRollPolicy(%q) = %d, want an error: past int64", s, p.size)
			}
			if float64(p.size) > n*(1<<30) {
				t.Fatalf("ParseRollPolicy(%q) size %d is larger than written", s, p.size)
			}
		}
	})
}
