package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/namer/dnssrv/dnsmasqtest"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

func dnssrvNamer(dnsAddr string, experimental bool) string {
	exp := ""
	if experimental {
		exp = "  experimental: true\n"
	}
	return fmt.Sprintf("namers:\n- kind: io.l5d.dnssrv\n%s  refreshIntervalSeconds: 1\n  dnsHosts: [%q]\n", exp, dnsAddr)
}

// TestDNSSRVRouting: `linnet router` with the io.l5d.dnssrv namer routes
// real HTTP to the loopback backend a real DNS server (dnsmasq) names by
// SRV, follows the record when it moves to another backend, and falls
// back through the dtab when the record is gone (NXDOMAIN).
func TestDNSSRVRouting(t *testing.T) {
	t.Parallel()
	_, one := backend(t, text("one"))
	_, two := backend(t, text("two"))
	_, fallback := backend(t, text("fallback"))
	srv := func(port int) string {
		return fmt.Sprintf("--srv-host=_http._tcp.hello.%s,web.%[1]s,%d,0,10", dnsmasqtest.Domain, port)
	}
	webA := "--host-record=web." + dnsmasqtest.Domain + ",127.0.0.1"
	dns := dnsmasqtest.Start(t, srv(one), webA)

	admin, port := freePort(t), freePort(t)
	startRouter(t, dnssrvNamer(dns.Addr(), true)+oneRouter(admin, port, fmt.Sprintf(`
		/srv => /#/io.l5d.dnssrv;
		/svc/hello => /srv/_http._tcp.hello.l5d.test. | %s;`, inet(fallback)), "", ""), admin)
	u := fmt.Sprintf("http://127.0.0.1:%d/", port)
	expect := func(what, want string) {
		t.Helper()
		var code int
		var body string
		if !linnettest.WaitFor(10*time.Second, func() bool {
			code, _, body = send(t, "GET", u, "hello", nil, nil)
			return code == 200 && body == want
		}) {
			t.Fatalf("%s: got %d %q; want 200 %q", what, code, body, want)
		}
	}
	expect("SRV record", "one")
	dns.Restart(srv(two), webA)
	expect("SRV record moved", "two")
	dns.Restart(webA)
	expect("SRV record gone (NXDOMAIN)", "fallback")
	dns.Restart(srv(one), webA)
	expect("SRV record back", "one")
}

// TestDNSSRVRequiresExperimental: like Linkerd 1.x, the kind is refused
// without `experimental: true`, with a message naming the namer.
func TestDNSSRVRequiresExperimental(t *testing.T) {
	t.Parallel()
	admin, port := freePort(t), freePort(t)
	p := linnettest.Start(t, linnettest.Options{
		Args:  []string{"router", "-"},
		Stdin: dnssrvNamer("127.0.0.1:53", false) + oneRouter(admin, port, "/svc => /#/io.l5d.dnssrv;", "", ""),
	})
	select {
	case <-p.Exited():
	case <-time.After(15 * time.Second):
		t.Fatal("linnet router started with an experimental namer not marked experimental")
	}
	if st := p.ExitState(); st.Success() || !strings.Contains(p.Output(), "namers[0]") ||
		!strings.Contains(p.Output(), "io.l5d.dnssrv is experimental") {
		t.Errorf("exit %v, output:\n%s", st, p.Output())
	}
}
