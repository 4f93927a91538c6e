package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namer/dnssrv/dnsmasqtest"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	wait     = 5 * time.Second
	interval = 40 * time.Millisecond
	web      = "_http._tcp.web.l5d.test."
)

// webRecords: two targets in priority 0 (weights 10 and 30) and a backup
// target in priority 1.
var webRecords = []string{
	"--srv-host=_http._tcp.web.l5d.test,a.l5d.test,8080,0,10",
	"--srv-host=_http._tcp.web.l5d.test,b.l5d.test,8081,0,30",
	"--srv-host=_http._tcp.web.l5d.test,c.l5d.test,9090,1,10",
}

const webHosts = "127.0.0.1 a.l5d.test\n127.0.0.2 b.l5d.test\n127.0.0.3 c.l5d.test\n"

// newNamer returns a namer asking server, polling every interval, and its
// metrics scope.
func newNamer(t *testing.T, server string) (*Namer, telemetry.Scope) {
	t.Helper()
	scope := telemetry.NewRegistry().Scope().Scope("namer", "dnssrv")
	n := New(naming.Env{Ctx: t.Context(), Scope: scope},
		WithInterval(interval), WithTimeout(2*time.Second), WithResolver(NewServerResolver(server)))
	t.Cleanup(func() { n.Close() })
	return n, scope
}

func p(s string) dtab.Path { return dtab.Path(strings.Split(strings.TrimPrefix(s, "/"), "/")) }

// describe renders a lookup answer: "pending", "neg", "fail: <err>", or
// "<id> <residual> <addr>".
func describe(a watch.Activity[dtab.Tree[naming.Name]]) string {
	switch {
	case a.State == watch.Failed:
		return "fail: " + a.Err.Error()
	case a.State == watch.Pending:
		return "pending"
	case a.Value.Kind == dtab.Neg:
		return "neg"
	case a.Value.Kind == dtab.Leaf && a.Value.Value.Bound != nil:
		b := a.Value.Value.Bound
		return fmt.Sprintf("%s %s %s", b.ID, b.Residual, describeAddr(b.Addr.Get()))
	}
	return fmt.Sprintf("unexpected %+v", a)
}

func describeAddr(a naming.Addr) string {
	switch a.State {
	case naming.AddrPending:
		return "pending"
	case naming.AddrNeg:
		return "neg"
	case naming.AddrFailed:
		return "failed: " + a.Err.Error()
	}
	var s []string
	for _, x := range a.Addrs {
		s = append(s, fmt.Sprintf("%s*%g", x.HostPort(), x.Weight))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// watchLookup subscribes to l for the rest of the test.
func watchLookup(t *testing.T, l naming.Lookup) {
	t.Helper()
	cancel := l.Subscribe(func(watch.Activity[dtab.Tree[naming.Name]]) {})
	t.Cleanup(cancel)
}

// eventually waits (bounded) until l describes as want.
func eventually(t *testing.T, l naming.Lookup, want string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := describe(l.Get())
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: got %q, want %q", wait, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// counterAbove waits until the counter named name exceeds min.
func counterAbove(t *testing.T, c *telemetry.Counter, name string, min int64) int64 {
	t.Helper()
	deadline := time.Now().Add(wait)
	for c.Value() <= min {
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed at %d", name, c.Value())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c.Value()
}

// TestBindAndFollowChanges: a watched SRV name binds the lowest-priority
// targets' addresses with their SRV weights, follows a changed A record
// (dnsmasq re-reads its address file on SIGHUP) and changed SRV records,
// and publishes nothing while the answer stays the same.
func TestBindAndFollowChanges(t *testing.T) {
	dns := dnsmasqtest.Start(t, webRecords...)
	dns.SetHosts(webHosts)
	n, scope := newNamer(t, dns.Addr())
	l := n.Lookup(p("/" + web + "/rest/x"))
	var trees atomic.Int32
	cancelTree := l.Subscribe(func(watch.Activity[dtab.Tree[naming.Name]]) { trees.Add(1) })
	defer cancelTree()
	eventually(t, l, "/#/io.l5d.dnssrv/"+web+" /rest/x [127.0.0.1:8080*10 127.0.0.2:8081*30]")

	b := l.Get().Value.Value.Bound
	var addrs atomic.Int32
	cancelAddr := b.Addr.Subscribe(func(naming.Addr) { addrs.Add(1) })
	defer cancelAddr()

	// Unchanged answers publish nothing, however often they are polled.
	lookups := scope.Counter("lookups")
	before := lookups.Value()
	counterAbove(t, lookups, "lookups", before+5)
	if got := addrs.Load(); got != 1 {
		t.Errorf("address set published %d times for an unchanged answer, want 1 (the subscription)", got)
	}
	if got := trees.Load(); got != 2 {
		t.Errorf("tree published %d times, want 2 (pending, then bound)", got)
	}

	// A target's address changes.
	dns.SetHosts(strings.Replace(webHosts, "127.0.0.2 b", "127.0.0.9 b", 1))
	eventually(t, l, "/#/io.l5d.dnssrv/"+web+" /rest/x [127.0.0.1:8080*10 127.0.0.9:8081*30]")
	if got := addrs.Load(); got != 2 {
		t.Errorf("address set published %d times, want 2", got)
	}
	if l.Get().Value.Value.Bound != b {
		t.Error("the bound name changed; only its addresses should")
	}

	// The priority-0 targets disappear: the priority-1 backup is used.
	dns.SetHosts("127.0.0.3 c.l5d.test\n")
	eventually(t, l, "/#/io.l5d.dnssrv/"+web+" /rest/x [127.0.0.3:9090*10]")

	// The SRV records change (dnsmasq restarted with new flags).
	dns.Restart("--srv-host=_http._tcp.web.l5d.test,d.l5d.test,7000,0,0",
		"--srv-host=_http._tcp.web.l5d.test,e.l5d.test,7001,0,0",
		"--host-record=d.l5d.test,127.0.0.4", "--host-record=e.l5d.test,127.0.0.5,::1")
	eventually(t, l, "/#/io.l5d.dnssrv/"+web+" /rest/x [127.0.0.4:7000*1 127.0.0.5:7001*0.5 [::1]:7001*0.5]")
}

// TestNegativeAndDtabFallback: NXDOMAIN (and a name with no SRV records)
// is negative, so the interpreter falls back to the next dtab alternative;
// when the record appears, binding switches to it.
func TestNegativeAndDtabFallback(t *testing.T) {
	dns := dnsmasqtest.Start(t, "--host-record=plain.l5d.test,127.0.0.1")
	n, _ := newNamer(t, dns.Addr())

	nx := n.Lookup(p("/_http._tcp.nope.l5d.test."))
	watchLookup(t, nx)
	eventually(t, nx, "neg")
	nodata := n.Lookup(p("/plain.l5d.test."))
	watchLookup(t, nodata)
	eventually(t, nodata, "neg")

	fallback := naming.NewStaticNamer(dtab.Path{"#", "static"}, map[string][]naming.Address{
		"fallback": {{Host: "127.0.0.1", Port: 1, Weight: 1}},
	})
	in := naming.NewInterpreter([]naming.MountedNamer{
		{Prefix: dtab.Path{"#", Kind}, Namer: n},
		{Prefix: dtab.Path{"#", "static"}, Namer: fallback},
	})
	d, err := dtab.Parse("/srv => /#/io.l5d.dnssrv; /svc/web => /srv/_http._tcp.web.l5d.test. | /#/static/fallback")
	if err != nil {
		t.Fatal(err)
	}
	binding := in.Bind(d, p("/svc/web"))
	got := make(chan string, 100)
	cancel := binding.Subscribe(func(a watch.Activity[naming.BoundTree]) {
		leaves, ok := dtab.Eval(a.Value)
		if a.State == watch.Ok && ok && len(leaves) == 1 {
			got <- leaves[0].ID.String()
		}
	})
	defer cancel()
	await := func(want string) {
		t.Helper()
		timeout := time.After(wait)
		for {
			select {
			case id := <-got:
				if id == want {
					return
				}
			case <-timeout:
				t.Fatalf("binding never reached %s", want)
			}
		}
	}
	await("/#/static/fallback")

	dns.Restart(append(webRecords, "--host-record=a.l5d.test,127.0.0.1", "--host-record=b.l5d.test,127.0.0.2")...)
	await("/#/io.l5d.dnssrv/" + web)
	dns.Restart()
	await("/#/static/fallback")
}

// TestServerDownKeepsLastAnswer: when the DNS server stops answering, a
// bound name keeps its addresses (and a negative name stays negative); a
// name that never resolved fails; all recover when the server is back.
func TestServerDownKeepsLastAnswer(t *testing.T) {
	dns := dnsmasqtest.Start(t, webRecords...)
	dns.SetHosts(webHosts)
	n, scope := newNamer(t, dns.Addr())
	l := n.Lookup(p("/" + web))
	watchLookup(t, l)
	want := "/#/io.l5d.dnssrv/" + web + " / [127.0.0.1:8080*10 127.0.0.2:8081*30]"
	eventually(t, l, want)
	nx := n.Lookup(p("/_http._tcp.nope.l5d.test."))
	watchLookup(t, nx)
	eventually(t, nx, "neg")

	dns.Stop()
	failures := scope.Counter("failures")
	counterAbove(t, failures, "failures", failures.Value()+6) // several failed polls of both names
	if got := describe(l.Get()); got != want {
		t.Errorf("after DNS failures: %q, want the last answer %q", got, want)
	}
	if got := describe(nx.Get()); got != "neg" {
		t.Errorf("negative name after DNS failures: %q", got)
	}
	never := n.Lookup(p("/_http._tcp.other.l5d.test."))
	watchLookup(t, never)
	deadline := time.Now().Add(wait)
	for !strings.HasPrefix(describe(never.Get()), "fail: io.l5d.dnssrv: SRV _http._tcp.other.l5d.test.: ") {
		if time.Now().After(deadline) {
			t.Fatalf("never-resolved name with the server down: %q", describe(never.Get()))
		}
		time.Sleep(5 * time.Millisecond)
	}

	if got := describe(never.Get()); !strings.Contains(got, " on "+dns.Addr()+":") {
		t.Errorf("the failure should name the DNS server asked (%s): %q", dns.Addr(), got)
	}

	dns.Restart("--srv-host=_http._tcp.other.l5d.test,a.l5d.test,1234", "--host-record=a.l5d.test,127.0.0.1")
	eventually(t, never, "/#/io.l5d.dnssrv/_http._tcp.other.l5d.test. / [127.0.0.1:1234*1]")
	eventually(t, l, "neg")
}

// TestDNSHostsInOrder: with several dnsHosts, a server that is down hands
// over to the next one.
func TestDNSHostsInOrder(t *testing.T) {
	down := dnsmasqtest.Start(t)
	down.Stop()
	up := dnsmasqtest.Start(t, "--srv-host=_http._tcp.web.l5d.test,a.l5d.test,8080", "--host-record=a.l5d.test,127.0.0.1")
	n := New(naming.Env{Ctx: t.Context()}, WithInterval(interval), WithResolver(NewServerResolver(down.Addr(), up.Addr())))
	defer n.Close()
	l := n.Lookup(p("/" + web))
	watchLookup(t, l)
	eventually(t, l, "/#/io.l5d.dnssrv/"+web+" / [127.0.0.1:8080*1]")
}

// TestPolledOnlyWhileWatched: nothing is asked before a lookup is watched
// or after the last watch ends; watching only the bound name's address set
// keeps it polled.
func TestPolledOnlyWhileWatched(t *testing.T) {
	dns := dnsmasqtest.Start(t, webRecords...)
	dns.SetHosts(webHosts)
	n, scope := newNamer(t, dns.Addr())
	lookups := scope.Counter("lookups")
	l := n.Lookup(p("/" + web))
	time.Sleep(5 * interval)
	if got := lookups.Value(); got != 0 {
		t.Fatalf("%d lookups before anything watched the name", got)
	}
	if got := describe(l.Get()); got != "pending" {
		t.Fatalf("unwatched lookup: %q", got)
	}
	cancel := l.Subscribe(func(watch.Activity[dtab.Tree[naming.Name]]) {})
	eventually(t, l, "/#/io.l5d.dnssrv/"+web+" / [127.0.0.1:8080*10 127.0.0.2:8081*30]")
	// A second lookup of the same name shares the watch.
	l2 := n.Lookup(p("/" + web + "/other"))
	if describe(l2.Get()) != "/#/io.l5d.dnssrv/"+web+" /other [127.0.0.1:8080*10 127.0.0.2:8081*30]" {
		t.Errorf("second lookup of a watched name: %q", describe(l2.Get()))
	}
	b := l.Get().Value.Value.Bound
	cancelAddr := b.Addr.Subscribe(func(naming.Addr) {})
	cancel()
	// Still polled through the address set: a change is seen.
	dns.SetHosts(strings.Replace(webHosts, "127.0.0.1 a", "127.0.0.7 a", 1))
	deadline := time.Now().Add(wait)
	for describeAddr(b.Addr.Get()) != "[127.0.0.2:8081*30 127.0.0.7:8080*10]" {
		if time.Now().After(deadline) {
			t.Fatalf("address set watched alone: %s", describeAddr(b.Addr.Get()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancelAddr()
	time.Sleep(3 * interval) // a poll already under way may finish
	stopped := lookups.Value()
	time.Sleep(5 * interval)
	if got := lookups.Value(); got != stopped {
		t.Errorf("%d lookups after the last watch ended", got-stopped)
	}
	n.mu.Lock()
	left := len(n.records)
	n.mu.Unlock()
	if left != 0 {
		t.Errorf("%d records kept for unwatched names", left)
	}
}

// fakeResolver answers from maps, for the weighting rules.
type fakeResolver struct {
	srv map[string][]*net.SRV
	ips map[string][]netip.Addr
}

var errNotFound = &net.DNSError{Err: "no such host", IsNotFound: true}

func (f fakeResolver) SRV(_ context.Context, name string) ([]*net.SRV, error) {
	if s, ok := f.srv[name]; ok {
		return s, nil
	}
	return nil, errNotFound
}

func (f fakeResolver) IPs(_ context.Context, host string) ([]netip.Addr, error) {
	if host == "broken." {
		return nil, errors.New("server misbehaving")
	}
	if a, ok := f.ips[host]; ok {
		return a, nil
	}
	return nil, errNotFound
}

func TestWeightsAndPriorities(t *testing.T) {
	ip := netip.MustParseAddr
	r := fakeResolver{
		srv: map[string][]*net.SRV{
			"zero":    {{Target: "a.", Port: 1, Weight: 0}, {Target: "b.", Port: 2, Weight: 0}},
			"mixed":   {{Target: "a.", Port: 1, Weight: 0}, {Target: "b.", Port: 2, Weight: 5}},
			"shared":  {{Target: "two.", Port: 1, Weight: 4}, {Target: "a.", Port: 1, Weight: 4}},
			"dup":     {{Target: "a.", Port: 1, Weight: 1}, {Target: "a.", Port: 1, Weight: 2}},
			"dot":     {{Target: ".", Port: 0}},
			"gone":    {{Target: "missing.", Port: 1, Priority: 0}, {Target: "b.", Port: 2, Priority: 7}},
			"broken":  {{Target: "broken.", Port: 1}},
			"prio":    {{Target: "b.", Port: 2, Priority: 9}, {Target: "a.", Port: 1, Priority: 3}},
			"allgone": {{Target: "missing.", Port: 1}},
		},
		ips: map[string][]netip.Addr{
			"a.":   {ip("10.0.0.1")},
			"b.":   {ip("10.0.0.2")},
			"two.": {ip("10.0.0.3"), ip("::ffff:10.0.0.4")},
		},
	}
	n := New(naming.Env{}, WithResolver(r))
	defer n.Close()
	for name, want := range map[string]string{
		"zero":     "[10.0.0.1:1*1 10.0.0.2:2*1]",
		"mixed":    "[10.0.0.1:1*0.01 10.0.0.2:2*5]",
		"shared":   "[10.0.0.1:1*4 10.0.0.3:1*2 10.0.0.4:1*2]",
		"dup":      "[10.0.0.1:1*3]",
		"dot":      "[]",
		"gone":     "[10.0.0.2:2*1]",
		"prio":     "[10.0.0.1:1*1]",
		"allgone":  "[]",
		"nxdomain": "neg",
		"broken":   "error: io.l5d.dnssrv: SRV broken: target broken.: server misbehaving",
	} {
		res := n.resolve(context.Background(), name)
		got := ""
		switch {
		case res.err != nil:
			got = "error: " + res.err.Error()
		case res.neg:
			got = "neg"
		default:
			got = describeAddr(naming.Addr{State: naming.AddrBound, Addrs: res.addrs})
		}
		if got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

func TestEmptyPathIsNegative(t *testing.T) {
	n := New(naming.Env{}, WithResolver(fakeResolver{}))
	defer n.Close()
	if got := describe(n.Lookup(dtab.Path{}).Get()); got != "neg" {
		t.Errorf("empty path: %s", got)
	}
}
