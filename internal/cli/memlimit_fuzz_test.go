package cli

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseMemoryLimit: any -memory.limit value is "no limit", a positive
// size, or an error naming the flag; an accepted size printed in bytes
// parses back to itself.
func FuzzParseMemoryLimit(f *testing.F) {
	for _, s := range []string{"off", "0", "256MiB", "1GiB", " 64 KB ", "100B", "1024", "-1MiB", "9223372036854775807B",
		"8589934592GiB", "MiB", "1.5GiB", "+5MB", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, err := parseMemoryLimit(v)
		if err != nil {
			if !strings.Contains(err.Error(), "-memory.limit") {
				t.Fatalf("parseMemoryLimit(%q) error %q does not name the flag", v, err)
			}
			return
		}
		if n <= 0 {
			t.Fatalf("parseMemoryLimit(%q) = %d", v, n)
		}
		if n == math.MaxInt64 {
			return
		}
		if back, err := parseMemoryLimit(strconv.FormatInt(n, 10) + "B"); err != nil || back != n {
			t.Fatalf("parseMemoryLimit(%q) = %d; %dB parses to %d, %v", v, n, n, back, err)
		}
	})
}
