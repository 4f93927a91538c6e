package fs

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fuzzResolve resolves names made of lower-case letters and dots to one
// fixed documentation address and fails every other name.
func fuzzResolve(_ context.Context, host string) ([]netip.Addr, error) {
	if fuzzHostName.MatchString(host) {
		return []netip.Addr{netip.MustParseAddr("192.0.2.7")}, nil
	}
	return nil, fmt.Errorf("no such host")
}

// fuzzHostName is compiled once: a fuzz input may hold thousands of lines,
// each resolved twice.
var fuzzHostName = regexp.MustCompile(`^[a-z][a-z.]*$`)

type hostPort struct {
	host string
	port int
}

var lineNumber = regexp.MustCompile(`line ([0-9]+): `)

// FuzzParseFile feeds arbitrary file contents to the io.l5d.fs parser:
// it never panics; an accepted file yields exactly the (host, port) pairs
// of its lines; a rejected one names the offending line, which exists and
// is not blank.
func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1 8080\n127.0.0.1 8081 # comment\n",
		"localhost 9990 * 0.5\n\n# only a comment\n",
		"[::1] 80\n::1 443 * 2\n127.1 1\n10.0.0.1 65535\r\n",
		"host.example 0\n",
		"127.0.0.1 80 * -1\n",
		"127.0.0.1 80 * NaN\n",
		"127.0.0.1\n",
		"1.2.3.4.5 80\n",
		"4294967295 80\n",
		"fe80::1%eth0 80\n",
		"127.0.0.1 +80\n",
	} {
		f.Add([]byte(s))
	}
	n := &Namer{root: "/fuzz", resolve: fuzzResolve}
	f.Fuzz(func(t *testing.T, b []byte) {
		addrs, err := n.parse(context.Background(), "svc", b)
		lines := strings.Split(string(b), "\n")
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "io.l5d.fs: /fuzz/svc") {
				t.Fatalf("error %q does not name the file", msg)
			}
			m := lineNumber.FindStringSubmatch(msg)
			if m == nil {
				if len(b) < 1<<20 {
					t.Fatalf("error %q names no line", msg)
				}
				return
			}
			ln, _ := strconv.Atoi(m[1])
			if ln < 1 || ln > len(lines) {
				t.Fatalf("error %q names line %d of %d", msg, ln, len(lines))
			}
			body, _, _ := strings.Cut(lines[ln-1], "#")
			if strings.TrimSpace(body) == "" {
				t.Fatalf("error %q names a blank line %q", msg, lines[ln-1])
			}
			return
		}
		// Every accepted line is in the result, and every result comes
		// from a line.
		want := map[hostPort]bool{}
		for _, line := range lines {
			body, _, _ := strings.Cut(line, "#")
			fields := strings.Fields(body)
			if len(fields) == 0 {
				continue
			}
			port, perr := strconv.Atoi(fields[1])
			if perr != nil || port < 1 || port > 65535 {
				t.Fatalf("accepted line %q has port %q", line, fields[1])
			}
			ips, rerr := n.hostIPs(context.Background(), fields[0])
			if rerr != nil || len(ips) == 0 {
				t.Fatalf("accepted line %q has unresolvable host: %v", line, rerr)
			}
			for _, ip := range ips {
				want[hostPort{ip.String(), port}] = true
			}
		}
		got := map[hostPort]bool{}
		for _, a := range addrs {
			if !(a.Weight >= 0) {
				t.Fatalf("address %+v has weight %v", a, a.Weight)
			}
			if _, err := netip.ParseAddr(a.Host); err != nil {
				t.Fatalf("address %+v host is not an IP: %v", a, err)
			}
			k := hostPort{a.Host, a.Port}
			if got[k] {
				t.Fatalf("address %+v listed twice in %+v", a, addrs)
			}
			got[k] = true
		}
		if len(got) != len(want) {
			t.Fatalf("input %q: got addresses %v, want %v", b, got, want)
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("input %q: address %v missing from %v", b, k, addrs)
			}
		}
	})
}
