package admin

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseGrace: any grace parameter is either a non-negative duration
// or an error quoting the value; Go's own form and twitter-util's form of
// an accepted duration parse back to it.
func FuzzParseGrace(f *testing.F) {
	for _, s := range []string{"10.seconds", "1.minute+30.seconds", "10s", "1m30s", "-1.second", "5.days-1.hour",
		"", " 2.HOURS ", "1.fortnight", "9223372036.seconds", "4611686018427387904.nanoseconds+4611686018427387904.nanoseconds",
		"+1.second", "1.second+", "1..second", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, err := parseGrace(v)
		if err != nil {
			if !strings.Contains(err.Error(), "'grace'") {
				t.Fatalf("parseGrace(%q) error %q does not name the parameter", v, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("parseGrace(%q) = %v, negative", v, d)
		}
		if back, err := parseGrace(d.String()); err != nil || back != d {
			t.Fatalf("parseGrace(%q) = %v; its String %q parses to %v, %v", v, d, d.String(), back, err)
		}
		if back, err := parseGrace(strconv.FormatInt(int64(d), 10) + ".nanoseconds"); err != nil || back != d {
			t.Fatalf("parseGrace(%q) = %v; %d.nanoseconds parses to %v, %v", v, d, int64(d), back, err)
		}
	})
}
