package marathon

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

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const (
	wait = 10 * time.Second
	ttl  = 50 * time.Millisecond // fast polls
)

// agents resolves the task host names of testdata/apps.json.
type agents map[string]string

func (a agents) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ip, ok := a[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []netip.Addr{netip.MustParseAddr(ip)}, nil
}

var testAgents = agents{"agent-3.marathon.test": "127.0.0.23"}

// newNamer returns a namer on m with o (fast polls, the test agents) and
// its metrics scope.
func newNamer(t *testing.T, m *fakeMarathon, o Options) (*Namer, telemetry.Scope) {
	t.Helper()
	if o.BaseURL == "" {
		o.BaseURL = m.srv.URL + m.prefix
	}
	if o.TTL == 0 {
		o.TTL = ttl
	}
	if o.Resolver == nil {
		o.Resolver = testAgents
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	scope := telemetry.NewRegistry().Scope().Scope("namer", "marathon")
	n, err := New(naming.Env{Ctx: t.Context(), Scope: scope}, o)
	if err != nil {
		t.Fatal(err)
	}
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
		s = append(s, e)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// watcher keeps a lookup and its bound address set watched, as a router
// does, and renders the latest state.
type watcher struct {
	mu      sync.Mutex
	cancels []func()
	last    watch.Activity[dtab.Tree[naming.Name]]
	updates int
	failed  bool // some answer was a failure
	stopped bool // stop ran: no more subscriptions
}

func watchLookup(t *testing.T, n *Namer, path string) *watcher {
	t.Helper()
	w := &watcher{}
	var addrOnce sync.Once
	cancel := n.Lookup(p(path)).Subscribe(func(a watch.Activity[dtab.Tree[naming.Name]]) {
		w.mu.Lock()
		w.last = a
		w.updates++
		w.failed = w.failed || a.State == watch.Failed
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
		time.Sleep(5 * time.Millisecond)
	}
}

// awaitPrefix waits until the rendered state starts with want.
func (w *watcher) awaitPrefix(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := w.state()
		if strings.HasPrefix(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: state %q, want it to start with %q", wait, got, want)
		}
		time.Sleep(5 * time.Millisecond)
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
		time.Sleep(10 * time.Millisecond)
	}
}

// The app id is the shortest prefix of the lower-cased path that is an
// app; the rest, in its own case, is the residual.
func TestLookupAndResiduals(t *testing.T) {
	m := startMarathon(t, "", nil)
	n, _ := newNamer(t, m, Options{})
	for _, c := range []struct{ path, want string }{
		{"/webapp", "/#/io.l5d.marathon/webapp / [127.0.0.11:31001 127.0.0.12:31002]"},
		{"/webapp/Some/Rest", "/#/io.l5d.marathon/webapp /Some/Rest [127.0.0.11:31001 127.0.0.12:31002]"},
		{"/Shop/Users/v1", "/#/io.l5d.marathon/shop/users /v1 [127.0.0.21:31101 127.0.0.22:31103 127.0.0.23:31105]"},
		{"/shop/ipapp", "/#/io.l5d.marathon/shop/ipapp / [127.0.0.31:8080]"},
		{"/shop", "neg"},        // a group, not an app
		{"/shop/nope/x", "neg"}, // no app under the group
		{"/webapps", "neg"},     // segments, not string prefixes
		{"/idle", "neg"},        // no task: negative, so fall-backs apply
		{"/users/shop", "neg"},  // order matters
		{"/web app/x", "neg"},   // not a Marathon id at all
	} {
		w := watchLookup(t, n, c.path)
		w.await(t, c.want)
		w.stop()
	}
	if got := describe(n.Lookup(nil).Get()); got != "neg" {
		t.Errorf("empty path: %q", got)
	}
}

// useHealthCheck keeps tasks with a passing result for every check.
func TestUseHealthCheck(t *testing.T) {
	m := startMarathon(t, "", nil)
	n, _ := newNamer(t, m, Options{UseHealthCheck: true})
	users := watchLookup(t, n, "/shop/users")
	users.await(t, "/#/io.l5d.marathon/shop/users / [127.0.0.21:31101]")
	web := watchLookup(t, n, "/webapp")
	web.await(t, "/#/io.l5d.marathon/webapp / [127.0.0.11:31001 127.0.0.12:31002]")
	ip := watchLookup(t, n, "/shop/ipapp") // no health checks: nothing to fail
	ip.await(t, "/#/io.l5d.marathon/shop/ipapp / [127.0.0.31:8080]")

	// A task turning unhealthy leaves on the next poll, and comes back.
	m.setAlive("/webapp", "webapp.3c6f4a91-1fa5-11e7-bfb4-0242ac110003", false)
	web.await(t, "/#/io.l5d.marathon/webapp / [127.0.0.12:31002]")
	m.setAlive("/webapp", "webapp.3c6fbfc2-1fa5-11e7-bfb4-0242ac110003", false)
	web.await(t, "neg") // no healthy task: negative, as with Linkerd
	m.setAlive("/webapp", "webapp.3c6f4a91-1fa5-11e7-bfb4-0242ac110003", true)
	web.await(t, "/#/io.l5d.marathon/webapp / [127.0.0.11:31001]")
}

// Tasks and apps come and go on the next poll; a lookup follows, and the
// bound name stays the same object while the app exists.
func TestLiveUpdates(t *testing.T) {
	m := startMarathon(t, "", nil)
	n, _ := newNamer(t, m, Options{})
	w := watchLookup(t, n, "/webapp/api")
	w.await(t, "/#/io.l5d.marathon/webapp /api [127.0.0.11:31001 127.0.0.12:31002]")
	first := w.last.Value.Value.Bound

	m.addTask("/webapp", "webapp.new-1", "127.0.0.14", 31010)
	w.await(t, "/#/io.l5d.marathon/webapp /api [127.0.0.11:31001 127.0.0.12:31002 127.0.0.14:31010]")
	m.removeTask("/webapp", "webapp.3c6f4a91-1fa5-11e7-bfb4-0242ac110003")
	w.await(t, "/#/io.l5d.marathon/webapp /api [127.0.0.12:31002 127.0.0.14:31010]")
	w.mu.Lock()
	same := w.last.Value.Value.Bound == first
	w.mu.Unlock()
	if !same {
		t.Error("the bound name changed with the address set; want one Bound per app")
	}

	// The app is removed: negative. Re-created: bound again.
	app := m.removeApp("/webapp")
	w.await(t, "neg")
	m.addApp(app)
	w.await(t, "/#/io.l5d.marathon/webapp /api [127.0.0.12:31002 127.0.0.14:31010]")

	// An app appears under a path that had none.
	later := watchLookup(t, n, "/shop/cart/checkout")
	later.await(t, "neg")
	m.addApp(map[string]any{"id": "/shop/cart", "instances": 1, "healthChecks": []any{}, "tasks": []any{
		map[string]any{"id": "shop_cart.1", "host": "127.0.0.41", "ports": []any{31201}, "state": "TASK_RUNNING"},
	}})
	later.await(t, "/#/io.l5d.marathon/shop/cart /checkout [127.0.0.41:31201]")
}

// Marathon unreachable: the last answer is kept (never drop a serving set
// because the registry blinked) and the failure is visible.
func TestMarathonUnreachableKeepsLastAnswer(t *testing.T) {
	m := startMarathon(t, "", nil)
	n, scope := newNamer(t, m, Options{Timeout: 100 * time.Millisecond})
	w := watchLookup(t, n, "/webapp")
	const bound = "/#/io.l5d.marathon/webapp / [127.0.0.11:31001 127.0.0.12:31002]"
	w.await(t, bound)

	m.setDown(true)
	deadline := time.Now().Add(wait)
	for stateDoc(n).AppList.Error == "" || stateDoc(n).Apps["/#/io.l5d.marathon/webapp"].Error == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no failure shown on the state page: %+v", stateDoc(n))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Longer than a list can be stale (2 TTL + the timeout) when no loop
	// confirms it: a running loop keeps it current through the outage.
	w.holds(t, bound, 8*ttl)
	// A new lookup during the outage gets the last answer too.
	w2 := watchLookup(t, n, "/webapp/during/outage")
	w2.await(t, "/#/io.l5d.marathon/webapp /during/outage [127.0.0.11:31001 127.0.0.12:31002]")
	st := stateDoc(n)
	if a := st.Apps["/#/io.l5d.marathon/webapp"]; a.State != "bound" || len(a.Addresses) != 2 || !strings.Contains(a.Error, "/v2/apps/webapp") {
		t.Errorf("state page while down: %+v", a)
	}
	if st.AppList.State != "ok" || !strings.Contains(st.AppList.Error, "/v2/apps") {
		t.Errorf("state page app list while down: %+v", st.AppList)
	}
	if f := counter(t, scope, "failures"); f < 2 {
		t.Errorf("failures counter %d while down", f)
	}

	// A Marathon error status is a failure too; the answer stays.
	m.setDown(false)
	m.setStatus(503)
	w.holds(t, bound, 5*ttl)
	m.setStatus(0)
	m.addTask("/webapp", "webapp.back", "127.0.0.15", 31011)
	w.await(t, "/#/io.l5d.marathon/webapp / [127.0.0.11:31001 127.0.0.12:31002 127.0.0.15:31011]")
	deadline = time.Now().Add(wait)
	for stateDoc(n).AppList.Error != "" || stateDoc(n).Apps["/#/io.l5d.marathon/webapp"].Error != "" {
		if time.Now().After(deadline) {
			t.Fatalf("failure still shown after recovery: %+v", stateDoc(n))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A name that never had an answer fails with Marathon's error.
func TestNeverReachedFails(t *testing.T) {
	m := startMarathon(t, "", nil)
	m.setDown(true)
	n, _ := newNamer(t, m, Options{})
	w := watchLookup(t, n, "/webapp")
	got := w.awaitPrefix(t, "fail: io.l5d.marathon: GET "+m.srv.URL+"/v2/apps")
	if !strings.Contains(got, "EOF") && !strings.Contains(got, "reset") {
		t.Errorf("failure %q does not say why", got)
	}
	m.setDown(false)
	w.await(t, "/#/io.l5d.marathon/webapp / [127.0.0.11:31001 127.0.0.12:31002]")
}

// An unwatched name costs nothing: its polls stop.
func TestUnwatchStopsPolling(t *testing.T) {
	m := startMarathon(t, "", nil)
	n, _ := newNamer(t, m, Options{})
	w1 := watchLookup(t, n, "/webapp/a")
	w2 := watchLookup(t, n, "/webapp/b")
	w1.await(t, "/#/io.l5d.marathon/webapp /a [127.0.0.11:31001 127.0.0.12:31002]")
	w2.await(t, "/#/io.l5d.marathon/webapp /b [127.0.0.11:31001 127.0.0.12:31002]")
	if l, a := n.Watching(); l != 2 || a != 1 {
		t.Errorf("watching %d lookups and %d apps, want 2 and 1 (one poll per app)", l, a)
	}
	w1.stop()
	w2.stop()
	if l, a := n.Watching(); l != 0 || a != 0 {
		t.Errorf("after unwatching: %d lookups and %d apps", l, a)
	}
	time.Sleep(300 * time.Millisecond) // a poll in flight may still land
	before := len(m.requestLog())
	time.Sleep(300 * time.Millisecond) // six polls if they had not stopped
	if after := len(m.requestLog()); after != before {
		t.Errorf("%d requests to Marathon after every watcher left", after-before)
	}
}

func counter(t *testing.T, s telemetry.Scope, name string) int64 {
	t.Helper()
	return s.Counter(name).Value()
}

type stateJSON struct {
	AppList ListState
	Apps    map[string]AppState
}

func stateDoc(n *Namer) stateJSON {
	v := n.State()
	b, _ := json.Marshal(v)
	var d stateJSON
	_ = json.Unmarshal(b, &d)
	return d
}

// Watching and unwatching the same paths from many goroutines at once
// leaves every watcher with an answer and nothing watched at the end.
func TestConcurrentWatchers(t *testing.T) {
	m := startMarathon(t, "", nil)
	n, _ := newNamer(t, m, Options{})
	paths := []string{"/webapp", "/webapp/x", "/shop/users", "/nope"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 30 {
				path := paths[(g+i)%len(paths)]
				w := watchLookup(t, n, path)
				if i%5 == 4 { // t.Fatal is for the test's goroutine: wait by hand
					want := map[string]string{
						"/webapp": "/#/io.l5d.marathon/webapp", "/webapp/x": "/#/io.l5d.marathon/webapp",
						"/shop/users": "/#/io.l5d.marathon/shop/users", "/nope": "neg",
					}[path]
					deadline := time.Now().Add(wait)
					for !strings.HasPrefix(w.state(), want) && time.Now().Before(deadline) {
						time.Sleep(5 * time.Millisecond)
					}
					if got := w.state(); !strings.HasPrefix(got, want) {
						t.Errorf("%s: %q, want %q…", path, got, want)
					}
				}
				w.stop()
			}
		})
	}
	wg.Wait()
	if l, a := n.Watching(); l != 0 || a != 0 {
		t.Errorf("after every watcher left: %d lookups and %d apps watched", l, a)
	}
	w := watchLookup(t, n, "/webapp/after")
	w.await(t, "/#/io.l5d.marathon/webapp /after [127.0.0.11:31001 127.0.0.12:31002]")
}
