package naming

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// FuzzInetLiterals: the host and port of /$/inet paths (which come from
// dtabs, including l5d-dtab headers) never panic the literal parsers; an
// IPv4 in the canonical dotted form parses to what netip reads, a
// shorthand equals its expanded dotted quad, and ports are Java ints.
func FuzzInetLiterals(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "127.1", "10.1.2", "2130706433", "::1", "fe80::1%eth0", "256.0.0.1",
		"1.2.3.4.5", "", ".", "1..2", "4294967296", "0x7f.1", "+1", "-0", "2147483648", "-2147483648", "1.16777216"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := parseJavaInt(s); ok {
			if n < -1<<31 || n > 1<<31-1 || strings.TrimLeft(strings.TrimLeft(s, "+-"), "0123456789") != "" {
				t.Fatalf("parseJavaInt(%q) = %d", s, n)
			}
		} else if n, err := strconv.ParseInt(s, 10, 32); err == nil && !strings.HasPrefix(s, "0x") {
			t.Fatalf("parseJavaInt(%q) refused what ParseInt reads as %d", s, n)
		}
		ip, ok := parseLiteralIP(s)
		want, err := netip.ParseAddr(s)
		if err == nil && want.Is4() && !ok {
			t.Fatalf("parseLiteralIP(%q) refused an IPv4 address", s)
		}
		if !ok {
			if strings.Contains(s, ":") && err == nil {
				t.Fatalf("parseLiteralIP(%q) refused an IPv6 address", s)
			}
			return
		}
		if !ip.IsValid() {
			t.Fatalf("parseLiteralIP(%q) = invalid address", s)
		}
		if err == nil && ip != want {
			t.Fatalf("parseLiteralIP(%q) = %v, want %v", s, ip, want)
		}
		if ip.Is4() {
			if back, ok := parseLiteralIP(ip.String()); !ok || back != ip {
				t.Fatalf("parseLiteralIP(%q) = %v, which parses to %v, %v", s, ip, back, ok)
			}
		}
	})
}
