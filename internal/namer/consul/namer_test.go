package consul

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	consulclient "github.com/linnet-mesh/linnet/internal/consul"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/namer/consul/consultest"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestMain(m *testing.M) {
	code := consultest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const wait = 10 * time.Second

// newNamer returns a namer on the agent at port with o (fast backoff,
// short blocking queries) and its metrics scope.
func newNamer(t *testing.T, port int, o Options) (*Namer, telemetry.Scope) {
	t.Helper()
	cli, tr, err := consulclient.NewClient("127.0.0.1", port, "", nil, 8)
	if err != nil {
		t.Fatal(err)
	}
	if o.Backoff == (backoff.Policy{}) {
		o.Backoff, _ = backoff.New(backoff.Options{Kind: backoff.KindJittered, MinMs: 20, MaxMs: 200})
	}
	if o.WaitTime == 0 {
		o.WaitTime = 5 * time.Second
	}
	o.OnClose = tr.CloseIdleConnections
	scope := telemetry.NewRegistry().Scope().Scope("namer", "consul")
	n := New(naming.Env{Ctx: t.Context(), Scope: scope}, cli, o)
	t.Cleanup(func() { n.Close() })
	return n, scope
}

func p(s string) dtab.Path { return dtab.Path(strings.Split(strings.TrimPrefix(s, "/"), "/")) }

// describe renders a lookup answer: "pending", "neg", "fail: <err>", or
// "<id> <residual> <addrs>".
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
	s := make([]string, 0, len(a.Addrs))
	for _, x := range a.Addrs {
		e := x.HostPort()
		if x.Weight != 1 {
			e += fmt.Sprintf("*%g", x.Weight)
		}
		if len(x.Meta) > 0 {
			e += fmt.Sprintf("%v", x.Meta)
		}
		s = append(s, e)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// watcher keeps a lookup and its bound address set watched and renders
// the latest state.
type watcher struct {
	mu      sync.Mutex
	cancels []func()
	last    watch.Activity[dtab.Tree[naming.Name]]
	lookup  naming.Lookup
	stopped bool // stop ran: no more subscriptions
}

func watchLookup(t *testing.T, n *Namer, path string) *watcher {
	t.Helper()
	w := &watcher{lookup: n.Lookup(p(path))}
	var addrOnce sync.Once
	cancel := w.lookup.Subscribe(func(a watch.Activity[dtab.Tree[naming.Name]]) {
		w.mu.Lock()
		w.last = a
		w.mu.Unlock()
		if a.State == watch.Ok && a.Value.Kind == dtab.Leaf {
			addrOnce.Do(func() {
				c := a.Value.Value.Bound.Addr.Subscribe(func(naming.Addr) {})
				w.mu.Lock()
				if w.stopped {
					// The answer came while the watcher was being stopped:
					// a subscription kept now would outlive it.
					w.mu.Unlock()
					c()
					return
				}
				w.cancels = append(w.cancels, c)
				w.mu.Unlock()
			})
		}
	})
	w.mu.Lock()
	w.cancels = append(w.cancels, cancel)
	w.mu.Unlock()
	t.Cleanup(w.stop)
	return w
}

func (w *watcher) stop() {
	w.mu.Lock()
	cs := w.cancels
	w.cancels, w.stopped = nil, true
	w.mu.Unlock()
	for _, c := range cs {
		c()
	}
}

func (w *watcher) state() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return describe(w.last)
}

// await waits until the rendered state is want.
func (w *watcher) await(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := w.state()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: state %q, want %q", wait, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// holds checks that the state stays want for d.
func (w *watcher) holds(t *testing.T, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := w.state(); got != want {
			t.Fatalf("state changed to %q, want it to stay %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestResolveScaleAndDeregister(t *testing.T) {
	a := consultest.Shared(t)
	n, scope := newNamer(t, a.Port(), Options{PreferServiceAddress: true})
	a.Register(t, consultest.Service{ID: "scale-1", Name: "scale", Address: "127.0.0.11", Port: 8081})

	w := watchLookup(t, n, "/.local/scale/rest/of/path")
	w.await(t, "/#/io.l5d.consul/.local/scale /rest/of/path [127.0.0.11:8081]")

	// Scale up: a second instance, and one on another port of the same host.
	a.Register(t, consultest.Service{ID: "scale-2", Name: "scale", Address: "127.0.0.12", Port: 8082})
	a.Register(t, consultest.Service{ID: "scale-3", Name: "scale", Address: "127.0.0.11", Port: 9091})
	w.await(t, "/#/io.l5d.consul/.local/scale /rest/of/path [127.0.0.11:8081 127.0.0.11:9091 127.0.0.12:8082]")

	// The explicit datacenter name binds its own id to the same instances.
	dc := watchLookup(t, n, "/dc1/scale")
	dc.await(t, "/#/io.l5d.consul/dc1/scale / [127.0.0.11:8081 127.0.0.11:9091 127.0.0.12:8082]")

	// Scale down.
	a.Deregister(t, "scale-1")
	a.Deregister(t, "scale-3")
	w.await(t, "/#/io.l5d.consul/.local/scale /rest/of/path [127.0.0.12:8082]")

	// The last instance goes: the service no longer exists.
	a.Deregister(t, "scale-2")
	w.await(t, "neg")
	dc.await(t, "neg")

	// And comes back.
	a.Register(t, consultest.Service{ID: "scale-4", Name: "scale", Address: "127.0.0.14", Port: 8084})
	w.await(t, "/#/io.l5d.consul/.local/scale /rest/of/path [127.0.0.14:8084]")
	a.Deregister(t, "scale-4")
	w.await(t, "neg")

	if got := scope.Counter("lookups").Value(); got < 2 {
		t.Errorf("lookups counter %d, want the blocking queries counted", got)
	}
}

func TestNegativeNames(t *testing.T) {
	a := consultest.Shared(t)
	n, _ := newNamer(t, a.Port(), Options{PreferServiceAddress: true})
	a.Register(t, consultest.Service{ID: "neg-1", Name: "negsvc", Address: "127.0.0.1", Port: 8081})
	defer a.Deregister(t, "neg-1")
	for _, path := range []string{
		"/.local/no-such-service",
		"/no-such-dc/negsvc", // Consul: "No path to datacenter"
		"/.local",            // too short
	} {
		w := watchLookup(t, n, path)
		w.await(t, "neg")
	}
}

func TestHealthChecks(t *testing.T) {
	a := consultest.Shared(t)
	passing, _ := newNamer(t, a.Port(), Options{PreferServiceAddress: true, HealthStatuses: []string{"passing"}})
	lenient, _ := newNamer(t, a.Port(), Options{PreferServiceAddress: true, HealthStatuses: []string{"passing", "warning"}})
	ignoring, _ := newNamer(t, a.Port(), Options{PreferServiceAddress: true})

	// TTL checks start critical.
	a.Register(t, consultest.Service{ID: "hc-1", Name: "hc", Address: "127.0.0.21", Port: 8081, TTL: "10m"})
	a.Register(t, consultest.Service{ID: "hc-2", Name: "hc", Address: "127.0.0.22", Port: 8082, TTL: "10m"})
	defer a.Deregister(t, "hc-1")
	defer a.Deregister(t, "hc-2")
	wp := watchLookup(t, passing, "/.local/hc")
	wl := watchLookup(t, lenient, "/.local/hc")
	wi := watchLookup(t, ignoring, "/.local/hc")
	// Registered but none healthy: bound to an empty set, not negative.
	wp.await(t, "/#/io.l5d.consul/.local/hc / []")
	wi.await(t, "/#/io.l5d.consul/.local/hc / [127.0.0.21:8081 127.0.0.22:8082]")

	a.Check(t, "hc-1", "pass")
	wp.await(t, "/#/io.l5d.consul/.local/hc / [127.0.0.21:8081]")
	a.Check(t, "hc-2", "warn")
	wl.await(t, "/#/io.l5d.consul/.local/hc / [127.0.0.21:8081 127.0.0.22:8082]")
	wp.holds(t, "/#/io.l5d.consul/.local/hc / [127.0.0.21:8081]", 200*time.Millisecond)
	a.Check(t, "hc-2", "pass")
	wp.await(t, "/#/io.l5d.consul/.local/hc / [127.0.0.21:8081 127.0.0.22:8082]")
	a.Check(t, "hc-1", "fail")
	wp.await(t, "/#/io.l5d.consul/.local/hc / [127.0.0.22:8082]")
	wl.await(t, "/#/io.l5d.consul/.local/hc / [127.0.0.22:8082]")
	wi.holds(t, "/#/io.l5d.consul/.local/hc / [127.0.0.21:8081 127.0.0.22:8082]", 100*time.Millisecond)
}

func TestTagsWeightsAndMetadata(t *testing.T) {
	a := consultest.Shared(t)
	tagged, _ := newNamer(t, a.Port(), Options{PreferServiceAddress: true, IncludeTag: true})
	weighted, _ := newNamer(t, a.Port(), Options{
		PreferServiceAddress: true,
		Weights:              map[string]float64{"canary": 0.1, "big": 3},
		TransferMetadata:     true,
	})
	a.Register(t, consultest.Service{ID: "tw-1", Name: "tw", Address: "127.0.0.31", Port: 8081, Tags: []string{"stable"}, Meta: map[string]string{"zone": "a"}})
	a.Register(t, consultest.Service{ID: "tw-2", Name: "tw", Address: "127.0.0.32", Port: 8082, Tags: []string{"canary"}})
	a.Register(t, consultest.Service{ID: "tw-3", Name: "tw", Address: "127.0.0.33", Port: 8083, Tags: []string{"canary", "big"}})
	defer a.Deregister(t, "tw-1")
	defer a.Deregister(t, "tw-2")
	defer a.Deregister(t, "tw-3")

	watchLookup(t, tagged, "/.local/canary/tw/x").await(t, "/#/io.l5d.consul/.local/canary/tw /x [127.0.0.32:8082 127.0.0.33:8083]")
	watchLookup(t, tagged, "/.local/stable/tw").await(t, "/#/io.l5d.consul/.local/stable/tw / [127.0.0.31:8081]")
	watchLookup(t, tagged, "/.local/nope/tw").await(t, "neg")
	watchLookup(t, tagged, "/.local/tw").await(t, "neg") // too short with includeTag
	// The largest weight of an instance's tags applies; service and node
	// Meta are copied.
	node := "node_meta:map[consul-network-segment: consul-version:1.20.0]" // the dev agent's node Meta
	watchLookup(t, weighted, "/.local/tw").await(t, "/#/io.l5d.consul/.local/tw / [127.0.0.31:8081map["+node+" service_meta:map[zone:a]] 127.0.0.32:8082*0.1map["+node+"] 127.0.0.33:8083*3map["+node+"]]")
}

// setHost: every address carries the Host the router sends,
// [<tag>.]<service>.service.<dc>.<domain>, with the agent's datacenter for
// .local.
func TestSetHost(t *testing.T) {
	a := consultest.Shared(t)
	n, _ := newNamer(t, a.Port(), Options{PreferServiceAddress: true, SetHost: true, IncludeTag: true})
	a.Register(t, consultest.Service{ID: "sh-1", Name: "sethost", Address: "127.0.0.81", Port: 8081, Tags: []string{"v1"}})
	defer a.Deregister(t, "sh-1")
	watchLookup(t, n, "/.local/v1/sethost").await(t, "/#/io.l5d.consul/.local/v1/sethost / [127.0.0.81:8081map[authority:v1.sethost.service.dc1.consul]]")
	watchLookup(t, n, "/dc1/v1/sethost").await(t, "/#/io.l5d.consul/dc1/v1/sethost / [127.0.0.81:8081map[authority:v1.sethost.service.dc1.consul]]")
	untagged, _ := newNamer(t, a.Port(), Options{PreferServiceAddress: true, SetHost: true})
	watchLookup(t, untagged, "/.local/sethost").await(t, "/#/io.l5d.consul/.local/sethost / [127.0.0.81:8081map[authority:sethost.service.dc1.consul]]")
}

// hostsResolver resolves names from a map (and fails for any other), so
// tests never ask the system's DNS.
type hostsResolver map[string][]netip.Addr

func (h hostsResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ips, ok := h[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestServiceOrNodeAddress(t *testing.T) {
	a := consultest.Shared(t)
	hosts := hostsResolver{"two.test": {netip.MustParseAddr("127.0.0.43"), netip.MustParseAddr("::ffff:127.0.0.44")}}
	prefer, _ := newNamer(t, a.Port(), Options{PreferServiceAddress: true, Resolver: hosts})
	node, _ := newNamer(t, a.Port(), Options{Resolver: hosts})
	a.Register(t, consultest.Service{ID: "addr-1", Name: "addr", Address: "127.0.0.41", Port: 8081})
	a.Register(t, consultest.Service{ID: "addr-2", Name: "addr", Port: 8082}) // no service address
	a.Register(t, consultest.Service{ID: "addr-3", Name: "addr", Address: "two.test", Port: 8083})
	a.Register(t, consultest.Service{ID: "addr-4", Name: "addr", Address: "unknown.test", Port: 8084})
	defer a.Deregister(t, "addr-1")
	defer a.Deregister(t, "addr-2")
	defer a.Deregister(t, "addr-3")
	defer a.Deregister(t, "addr-4")
	// The dev agent's node address is 127.0.0.1; a host name is resolved
	// (all its addresses), and one that does not resolve is skipped.
	watchLookup(t, prefer, "/.local/addr").await(t, "/#/io.l5d.consul/.local/addr / [127.0.0.1:8082 127.0.0.41:8081 127.0.0.43:8083 127.0.0.44:8083]")
	watchLookup(t, node, "/.local/addr").await(t, "/#/io.l5d.consul/.local/addr / [127.0.0.1:8081 127.0.0.1:8082 127.0.0.1:8083 127.0.0.1:8084]")
}

// Lookups of one service share one watch, which stops when the last
// subscriber cancels.
func TestSharedWatchStopsWhenUnwatched(t *testing.T) {
	a := consultest.Shared(t)
	n, scope := newNamer(t, a.Port(), Options{PreferServiceAddress: true})
	a.Register(t, consultest.Service{ID: "share-1", Name: "share", Address: "127.0.0.51", Port: 8081})
	defer a.Deregister(t, "share-1")

	w1 := watchLookup(t, n, "/.local/share/a")
	w2 := watchLookup(t, n, "/.local/share/b")
	w1.await(t, "/#/io.l5d.consul/.local/share /a [127.0.0.51:8081]")
	w2.await(t, "/#/io.l5d.consul/.local/share /b [127.0.0.51:8081]")
	if got := n.Watching(); got != 1 {
		t.Fatalf("watching %d services, want 1 shared watch", got)
	}
	w1.stop()
	if got := n.Watching(); got != 1 {
		t.Fatalf("after one cancel: watching %d, want 1", got)
	}
	w2.stop()
	if got := n.Watching(); got != 0 {
		t.Fatalf("after the last cancel: watching %d, want 0", got)
	}
	// No more queries once unwatched (one may be in flight when cancelled).
	time.Sleep(50 * time.Millisecond)
	before := scope.Counter("lookups").Value()
	a.Register(t, consultest.Service{ID: "share-2", Name: "share", Address: "127.0.0.52", Port: 8082})
	defer a.Deregister(t, "share-2")
	time.Sleep(300 * time.Millisecond)
	if after := scope.Counter("lookups").Value(); after != before {
		t.Fatalf("queries went on after the last cancel: %d → %d", before, after)
	}
	// Watching again starts a new watch with the current state.
	w3 := watchLookup(t, n, "/.local/share")
	w3.await(t, "/#/io.l5d.consul/.local/share / [127.0.0.51:8081 127.0.0.52:8082]")
}

// The agent stops: the last answer is kept. It comes back (empty, as a dev
// agent does) and the namer follows the new registrations.
func TestAgentRestartKeepsLastStateThenRecovers(t *testing.T) {
	a := consultest.Start(t)
	n, scope := newNamer(t, a.Port(), Options{PreferServiceAddress: true})
	a.Register(t, consultest.Service{ID: "r-1", Name: "restart", Address: "127.0.0.61", Port: 8081})
	w := watchLookup(t, n, "/.local/restart")
	w.await(t, "/#/io.l5d.consul/.local/restart / [127.0.0.61:8081]")

	a.Stop()
	deadline := time.Now().Add(wait)
	for scope.Counter("failures").Value() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no failure counted after the agent stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.holds(t, "/#/io.l5d.consul/.local/restart / [127.0.0.61:8081]", 500*time.Millisecond)
	// The state page shows the kept answer and why it is not fresh.
	st := stateJSON(t, n)
	if !strings.Contains(st, `"/#/io.l5d.consul/.local/restart":{"state":"bound","addresses":["127.0.0.61:8081"],"error":"consul: health of service \"restart\"`) {
		t.Fatalf("state page while the agent is down: %s", st)
	}

	a.Restart(t)
	a.Register(t, consultest.Service{ID: "r-2", Name: "restart", Address: "127.0.0.62", Port: 8082})
	w.await(t, "/#/io.l5d.consul/.local/restart / [127.0.0.62:8082]")
	if st := stateJSON(t, n); st != `{"services":{"/#/io.l5d.consul/.local/restart":{"state":"bound","addresses":["127.0.0.62:8082"]}}}` {
		t.Fatalf("state page after recovery: %s", st)
	}
	w.stop()
	if st := stateJSON(t, n); st != `{"services":{}}` {
		t.Fatalf("state page when nothing is watched: %s", st)
	}
}

func stateJSON(t *testing.T, n *Namer) string {
	t.Helper()
	b, err := json.Marshal(n.State())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// With Consul unreachable from the start, a name stays pending, or fails
// with Consul's error when failFast is set.
func TestUnreachableConsul(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now

	patient, scope := newNamer(t, port, Options{PreferServiceAddress: true})
	w := watchLookup(t, patient, "/.local/web")
	deadline := time.Now().Add(wait)
	for scope.Counter("failures").Value() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no retried failure counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := w.state(); got != "pending" {
		t.Fatalf("state %q, want pending", got)
	}

	fast, _ := newNamer(t, port, Options{PreferServiceAddress: true, FailFast: true})
	wf := watchLookup(t, fast, "/.local/web")
	deadline = time.Now().Add(wait)
	for {
		got := wf.state()
		if strings.HasPrefix(got, "fail: ") {
			if !strings.Contains(got, `service "web"`) || !strings.Contains(got, "connect") {
				t.Fatalf("failure %q does not say what failed", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failFast: state %q, want a failure", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Many lookups of distinct names, watched and cancelled concurrently,
// leave no watch behind (goleak in TestMain checks the goroutines).
func TestConcurrentWatchCancel(t *testing.T) {
	a := consultest.Shared(t)
	n, _ := newNamer(t, a.Port(), Options{PreferServiceAddress: true})
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() { // the admin state page, read meanwhile
		for {
			select {
			case <-done:
				return
			default:
				_ = n.State()
			}
		}
	})
	var subs sync.WaitGroup
	for i := range 20 {
		subs.Go(func() {
			l := n.Lookup(p(fmt.Sprintf("/.local/cc-%d", i%5)))
			for range 10 {
				cancel := l.Subscribe(func(watch.Activity[dtab.Tree[naming.Name]]) {})
				cancel()
			}
		})
	}
	subs.Wait()
	close(done)
	wg.Wait()
	if got := n.Watching(); got != 0 {
		t.Fatalf("watching %d services after every cancel, want 0", got)
	}
	n.Close()
}

// An agent that accepts connections but never answers does not hold a
// watch forever: the query times out and counts as a failure.
func TestSilentAgent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // read nothing, answer nothing
		}
	}()
	n, _ := newNamer(t, l.Addr().(*net.TCPAddr).Port, Options{PreferServiceAddress: true, FailFast: true, WaitTime: 200 * time.Millisecond})
	w := watchLookup(t, n, "/.local/web")
	deadline := time.Now().Add(wait)
	for !strings.Contains(w.state(), "deadline exceeded") {
		if time.Now().After(deadline) {
			t.Fatalf("state %q, want a timeout failure", w.state())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
