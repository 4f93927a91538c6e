package dnssrv

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// FuzzServerAddr: any dnsHosts entry is either an error quoting it or a
// dialable host:port with a port from 1 to 65535, which is itself an
// accepted entry that maps to itself.
func FuzzServerAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "127.0.0.1:5353", "[::1]", "[::1]:53", "::1", "dns.local", "dns.local.:1053",
		"", " ", "host:0", "host:65536", "-bad.host", "a..b", "[::1", "1.2.3.4:+53", "fe80::1%eth0", "_srv.x:53"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, err := ServerAddr(s)
		if err != nil {
			if strings.TrimSpace(s) != "" && !strings.Contains(err.Error(), strconv.Quote(strings.TrimSpace(s))) {
				t.Fatalf("ServerAddr(%q) error %q does not quote the entry", s, err)
			}
			return
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			t.Fatalf("ServerAddr(%q) = %q, not host:port: %v", s, addr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			t.Fatalf("ServerAddr(%q) = %q: bad port", s, addr)
		}
		if again, err := ServerAddr(addr); err != nil || again != addr {
			t.Fatalf("ServerAddr(%q) = %q, which maps to %q, %v", s, addr, again, err)
		}
	})
}
