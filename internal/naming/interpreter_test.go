package naming

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var fsPrefix = dtab.MustParsePath("/#/io.l5d.fs")

func addr(host string, port int) Address { return Address{Host: host, Port: port, Weight: 1} }

// recorder collects the values a Binding pushes.
type recorder struct {
	ch chan watch.Activity[BoundTree]
}

func record(t *testing.T, b Binding) (*recorder, func()) {
	t.Helper()
	r := &recorder{ch: make(chan watch.Activity[BoundTree], 64)}
	cancel := b.Subscribe(func(a watch.Activity[BoundTree]) { r.ch <- a })
	return r, cancel
}

func (r *recorder) next(t *testing.T) watch.Activity[BoundTree] {
	t.Helper()
	select {
	case a := <-r.ch:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no update within 5s")
		return watch.Activity[BoundTree]{}
	}
}

func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case a := <-r.ch:
		t.Fatalf("unexpected update %v %s", a.State, show(a.Value))
	case <-time.After(50 * time.Millisecond):
	}
}

func show(t BoundTree) string {
	return dtab.ShowTreeFunc(t, func(b *Bound) string { return b.ID.String() + "+" + b.Residual.String() })
}

func wantTree(t *testing.T, a watch.Activity[BoundTree], want string) {
	t.Helper()
	if a.State != watch.Ok {
		t.Fatalf("binding is %v (%v), want %s", a.State, a.Err, want)
	}
	if got := show(a.Value); got != want {
		t.Fatalf("bound tree %s, want %s", got, want)
	}
}

func TestBindFollowsNamerChanges(t *testing.T) {
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"world": {addr("10.0.0.1", 80)}})
	in := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}})
	d := dtab.MustParse("/svc => /#/io.l5d.fs")
	r, cancel := record(t, in.Bind(d, dtab.MustParsePath("/svc/world/x")))

	wantTree(t, r.next(t), "/#/io.l5d.fs/world+/x")
	fs.Delete("world")
	wantTree(t, r.next(t), "~")
	fs.Set("world", addr("10.0.0.2", 80))
	a := r.next(t)
	wantTree(t, a, "/#/io.l5d.fs/world+/x")

	// An address change flows through the bound name's Addr; the tree
	// itself (and so the client it keys) stays the same.
	got := make(chan Addr, 4)
	stop := a.Value.Value.Addr.Subscribe(func(x Addr) { got <- x })
	if x := <-got; len(x.Addrs) != 1 || x.Addrs[0].Host != "10.0.0.2" {
		t.Fatalf("addr %+v", x)
	}
	fs.Set("world", addr("10.0.0.3", 80))
	if x := <-got; len(x.Addrs) != 1 || x.Addrs[0].Host != "10.0.0.3" {
		t.Fatalf("addr %+v", x)
	}
	stop()
	r.none(t)

	cancel()
	if n := fs.Subscribers(); n != 0 {
		t.Fatalf("%d namer subscriptions left after cancel", n)
	}
}

func TestBindSharesOneComputation(t *testing.T) {
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"world": {addr("10.0.0.1", 80)}})
	in := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}})
	path := dtab.MustParsePath("/svc/world")
	// Equal content in two different slices.
	d1 := dtab.MustParse("/svc => /#/io.l5d.fs")
	d2 := dtab.MustParse("/svc => /#/io.l5d.fs")

	b1 := in.Bind(d1, path)
	r1, cancel1 := record(t, b1)
	r2, cancel2 := record(t, in.Bind(d2, path))
	wantTree(t, r1.next(t), "/#/io.l5d.fs/world+/")
	wantTree(t, r2.next(t), "/#/io.l5d.fs/world+/")
	if evals := in.evals.Load(); evals != 1 {
		t.Fatalf("%d evaluations for two identical bindings, want 1", evals)
	}
	if n := fs.Subscribers(); n != 1 {
		t.Fatalf("%d namer subscriptions, want 1 shared", n)
	}
	if in.Bind(d1, path) != b1 {
		t.Fatal("Bind of a watched (dtab, path) did not return the live binding")
	}
	cancel1()
	if n := fs.Subscribers(); n != 1 {
		t.Fatalf("%d namer subscriptions after one of two cancels, want 1", n)
	}
	fs.Delete("world")
	wantTree(t, r2.next(t), "~")
	r1.none(t)
	cancel2()
	if n := fs.Subscribers(); n != 0 {
		t.Fatalf("%d namer subscriptions after cancel, want 0", n)
	}
	in.mu.RLock()
	defer in.mu.RUnlock()
	if len(in.byText) != 0 || len(in.byIdent) != 0 {
		t.Fatalf("cache not empty after cancel: %d by text, %d by identity", len(in.byText), len(in.byIdent))
	}
}

func TestUnrelatedNamesAreNotRecomputed(t *testing.T) {
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"a": nil, "b": nil})
	in := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}})
	d := dtab.MustParse("/svc => /#/io.l5d.fs")
	ra, cancelA := record(t, in.Bind(d, dtab.MustParsePath("/svc/a")))
	defer cancelA()
	rb, cancelB := record(t, in.Bind(d, dtab.MustParsePath("/svc/b")))
	defer cancelB()
	ra.next(t)
	rb.next(t)
	before := in.evals.Load()
	fs.Delete("b")
	wantTree(t, rb.next(t), "~")
	ra.none(t)
	if n := in.evals.Load() - before; n != 1 {
		t.Fatalf("%d evaluations after a change to one name, want 1", n)
	}
	// Address changes do not re-bind at all.
	fs.Set("a", addr("10.0.0.9", 1))
	ra.none(t)
	if n := in.evals.Load() - before; n != 1 {
		t.Fatalf("an address change caused %d more evaluations", n-1)
	}
}

func TestPendingRules(t *testing.T) {
	p := dtab.MustParsePath("/#/p")
	pn := NewStaticNamer(p, map[string][]Address{"ok": nil})
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"world": nil})
	in := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}, {Prefix: p, Namer: pn}})
	pn.SetPending("x")
	pn.SetPending("y")

	t.Run("alternation waits in order", func(t *testing.T) {
		r, cancel := record(t, in.Bind(dtab.MustParse("/s => /#/p/x | /#/io.l5d.fs/world"), dtab.MustParsePath("/s")))
		defer cancel()
		if a := r.next(t); a.State != watch.Pending {
			t.Fatalf("state %v, want pending", a.State)
		}
		pn.Delete("x")
		wantTree(t, r.next(t), "/#/io.l5d.fs/world+/")
		pn.SetPending("x")
		if a := r.next(t); a.State != watch.Pending {
			t.Fatalf("state %v, want pending again", a.State)
		}
	})
	t.Run("union uses the ok branches", func(t *testing.T) {
		r, cancel := record(t, in.Bind(dtab.MustParse("/s => /#/p/y & /#/io.l5d.fs/world"), dtab.MustParsePath("/s")))
		defer cancel()
		wantTree(t, r.next(t), "/#/io.l5d.fs/world+/")
		pn.Set("y")
		wantTree(t, r.next(t), "/#/p/y+/ & /#/io.l5d.fs/world+/")
		pn.SetPending("y")
		wantTree(t, r.next(t), "/#/io.l5d.fs/world+/")
	})
	t.Run("union of pending is pending, with a failure it fails", func(t *testing.T) {
		r, cancel := record(t, in.Bind(dtab.MustParse("/s => /#/p/x & /#/p/y"), dtab.MustParsePath("/s")))
		defer cancel()
		if a := r.next(t); a.State != watch.Pending {
			t.Fatalf("state %v, want pending", a.State)
		}
		boom := errors.New("boom")
		pn.SetFailed("x", boom)
		if a := r.next(t); a.State != watch.Failed || !errors.Is(a.Err, boom) {
			t.Fatalf("state %v (%v), want failed with boom", a.State, a.Err)
		}
		pn.Set("y")
		wantTree(t, r.next(t), "/#/p/y+/")
	})
	if n := pn.Subscribers() + fs.Subscribers(); n != 0 {
		t.Fatalf("%d namer subscriptions left", n)
	}
}

func TestBindMovesItsSubscriptions(t *testing.T) {
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"a": nil, "b": nil})
	in := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}})
	d := dtab.MustParse("/svc => /#/io.l5d.fs/a | /#/io.l5d.fs/b")
	rec, cancel := record(t, in.Bind(d, dtab.MustParsePath("/svc")))
	wantTree(t, rec.next(t), "/#/io.l5d.fs/a+/")
	if n := fs.Subscribers(); n != 1 {
		t.Fatalf("%d subscriptions, want 1 (b is never reached)", n)
	}
	fs.Delete("a")
	wantTree(t, rec.next(t), "/#/io.l5d.fs/b+/")
	if n := fs.Subscribers(); n != 2 {
		t.Fatalf("%d subscriptions, want 2 (a, now negative, and b)", n)
	}
	fs.Set("a")
	wantTree(t, rec.next(t), "/#/io.l5d.fs/a+/")
	if n := fs.Subscribers(); n != 1 {
		t.Fatalf("%d subscriptions, want 1 (b's was dropped)", n)
	}
	cancel()
	if n := fs.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

func TestConcurrentSubscribeCancel(t *testing.T) {
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"a": nil, "b": nil})
	in := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}})
	base := dtab.MustParse("/svc => /#/io.l5d.fs")
	paths := []dtab.Path{dtab.MustParsePath("/svc/a"), dtab.MustParsePath("/svc/b")}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				fs.Delete("a")
			} else {
				fs.Set("a")
			}
		}
	}()
	var workers sync.WaitGroup
	for w := range 8 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range 200 {
				b := in.Bind(base, paths[(w+i)%2])
				cancel := b.Subscribe(func(watch.Activity[BoundTree]) {})
				_ = b.Get()
				cancel()
			}
		}()
	}
	workers.Wait()
	close(stop)
	wg.Wait()
	if n := fs.Subscribers(); n != 0 {
		t.Fatalf("%d namer subscriptions left", n)
	}
	in.mu.RLock()
	defer in.mu.RUnlock()
	if len(in.byText) != 0 || len(in.byIdent) != 0 {
		t.Fatalf("cache not empty: %d by text, %d by identity", len(in.byText), len(in.byIdent))
	}
}

func TestIdentityCacheSurvivesSharedBackingArrays(t *testing.T) {
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"a": nil, "b": nil})
	in := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}})
	base := make(dtab.Dtab, 0, 4)
	base = append(base, dtab.MustParse("/svc => /#/io.l5d.fs")...)
	path := dtab.MustParsePath("/svc/x")
	// Both appends write into base's spare capacity: same array, same length.
	da := append(base, dtab.MustParse("/svc/x => /#/io.l5d.fs/a")...)
	ra, cancelA := record(t, in.Bind(da, path))
	defer cancelA()
	wantTree(t, ra.next(t), "/#/io.l5d.fs/a+/")
	db := append(base, dtab.MustParse("/svc/x => /#/io.l5d.fs/b")...)
	if &da[0] != &db[0] {
		t.Fatal("test setup: appends did not share the array")
	}
	rb, cancelB := record(t, in.Bind(db, path))
	defer cancelB()
	wantTree(t, rb.next(t), "/#/io.l5d.fs/b+/")
}

func TestNamerPrecedence(t *testing.T) {
	// Both namers are mounted at the same prefix: the later one is asked
	// first, the earlier one only when the later answers Neg.
	first := NewStaticNamer(fsPrefix, map[string][]Address{"a": nil, "b": nil})
	second := NewStaticNamer(fsPrefix, map[string][]Address{"a": nil})
	in := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: first}, {Prefix: fsPrefix, Namer: second}})
	for _, tc := range []struct{ path, namer string }{{"/#/io.l5d.fs/a", "second"}, {"/#/io.l5d.fs/b", "first"}} {
		a := in.Bind(nil, dtab.MustParsePath(tc.path)).Get()
		wantTree(t, a, tc.path+"+/")
		owner := "first"
		second.mu.Lock()
		for _, sn := range second.names {
			for _, b := range sn.bound {
				if b == a.Value.Value {
					owner = "second"
				}
			}
		}
		second.mu.Unlock()
		if owner != tc.namer {
			t.Errorf("%s bound by the %s namer, want %s", tc.path, owner, tc.namer)
		}
	}
}

func TestInetResolvesThroughDNS(t *testing.T) {
	var mu sync.Mutex
	answer := []netip.Addr{netip.MustParseAddr("127.0.0.2")}
	var answerErr error
	resolver := func(ctx context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		if host != "svc.test" {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return answer, answerErr
	}
	in := NewInterpreter(nil, WithHostResolver(resolver), WithDNSInterval(10*time.Millisecond))
	a := in.Bind(nil, dtab.MustParsePath("/$/inet/svc.test/8080/rest")).Get()
	wantTree(t, a, "/$/inet/svc.test/8080+/rest")
	got := make(chan Addr, 16)
	cancel := a.Value.Value.Addr.Subscribe(func(x Addr) { got <- x })
	next := func() Addr {
		t.Helper()
		for {
			select {
			case x := <-got:
				if x.State != AddrPending {
					return x
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no address update")
			}
		}
	}
	if x := next(); x.State != AddrBound || len(x.Addrs) != 1 || x.Addrs[0].HostPort() != "127.0.0.2:8080" {
		t.Fatalf("addr %+v", x)
	}
	mu.Lock()
	answer = []netip.Addr{netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("::1")}
	mu.Unlock()
	if x := next(); x.State != AddrBound || len(x.Addrs) != 2 || x.Addrs[0].HostPort() != "127.0.0.3:8080" || x.Addrs[1].HostPort() != "[::1]:8080" {
		t.Fatalf("addr %+v", x)
	}
	// A transient failure keeps the last good answer.
	mu.Lock()
	answerErr = errors.New("timeout")
	mu.Unlock()
	select {
	case x := <-got:
		t.Fatalf("transient failure published %+v", x)
	case <-time.After(50 * time.Millisecond):
	}
	cancel() // stops the poller (goleak checks it is gone)

	ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()

	// fixedinet resolves once, however long it is watched.
	mu.Lock()
	answerErr = nil
	calls := 0
	mu.Unlock()
	counting := func(ctx context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return resolver(ctx, host)
	}
	fixed := NewInterpreter(nil, WithHostResolver(counting), WithDNSInterval(time.Millisecond))
	f := fixed.Bind(nil, dtab.MustParsePath("/$/fixedinet/svc.test/1")).Get()
	stopFixed := f.Value.Value.Addr.Subscribe(func(Addr) {})
	if x, err := AwaitAddr(ctx, f.Value.Value.Addr); err != nil || x.State != AddrBound {
		t.Fatalf("fixedinet: %+v %v", x, err)
	}
	time.Sleep(30 * time.Millisecond)
	stopFixed()
	mu.Lock()
	if calls != 1 {
		t.Errorf("fixedinet resolved %d times, want 1", calls)
	}
	mu.Unlock()

	b := in.Bind(nil, dtab.MustParsePath("/$/inet/nowhere.test/80")).Get()
	x, err := AwaitAddr(ctx, b.Value.Value.Addr)
	if err != nil || x.State != AddrNeg {
		t.Fatalf("unknown host: %+v %v, want neg", x, err)
	}
}

func TestSystemNamer(t *testing.T) {
	in := NewInterpreter(nil)
	// Rewritten paths are delegated through the dtab again.
	rewrites := dtab.MustParse("/ip => /$/inet; /rinet => /$/io.buoyant.rinet; /fail => /$/fail; /com/example => /$/nil")
	for _, tc := range []struct{ path, want string }{
		{"/$/inet/127.1/8080", "/$/inet/127.1/8080+/"},
		{"/$/inet/1234/5678", "/$/inet/1234/5678+/"},
		{"/$/inet/1234/foo", "/$/inet/1234+/foo"},
		{"/$/fixedinet/10.0.0.1/080/x", "/$/fixedinet/10.0.0.1/080+/x"},
		{"/$/fail/x", "!"},
		{"/$/nil", "$"},
		{"/$", "~"},
		{"/x", "~"},
		{"/$/io.buoyant.rinet/8080/127.0.0.1/a", "/$/io.buoyant.rinet/8080/127.0.0.1+/a"},
		{"/$/io.buoyant.rinet/http/127.0.0.1", "~"},
		{"/$/io.buoyant.hostportPfx/ip/127.0.0.1:8080/a", "/$/inet/127.0.0.1/8080+/a"},
		{"/$/io.buoyant.hostportPfx/inet/127.0.0.1", "~"},
		{"/$/io.buoyant.hostportPfx/inet/127.0.0.1:HTTP", "~"},
		{"/$/io.buoyant.porthostPfx/rinet/127.0.0.1:8080", "/$/io.buoyant.rinet/8080/127.0.0.1+/"},
		{"/$/io.buoyant.http.anyMethodPfx/$/GET/nil", "$"},
		{"/$/io.buoyant.http.anyMethodPfx/$/get/nil", "~"},
		{"/$/io.buoyant.http.anyMethod/GET/$/nil", "$"},
		{"/$/io.buoyant.http.anyHost/example.com/$/nil", "$"},
		{"/$/io.buoyant.http.anyHostPfx/$/example.com/nil", "$"},
		{"/$/io.buoyant.http.subdomainOfPfx/example.com/$/nil.example.com:80", "$"},
		{"/$/io.buoyant.http.subdomainOfPfx/example.com/$/example.com", "~"},
		{"/$/io.buoyant.http.subdomainOf/example.com/fail.example.com", "!"},
		{"/$/io.buoyant.http.domainToPath/example.com", "$"},
		{"/$/io.buoyant.http.domainToPathPfx/$/a..b", "~"},
		{"/$/io.buoyant.http.domainToPathPfx/$/nil", "$"},
	} {
		a := in.Bind(rewrites, dtab.MustParsePath(tc.path)).Get()
		if a.State != watch.Ok {
			t.Errorf("%s: %v (%v), want %s", tc.path, a.State, a.Err, tc.want)
			continue
		}
		if got := show(a.Value); got != tc.want {
			t.Errorf("%s bound to %s, want %s", tc.path, got, tc.want)
		}
	}
	for _, p := range []string{"/$/inet", "/$/inet/host", "/$/inet/host/http", "/$/com.example.Nope/x"} {
		a := in.Bind(nil, dtab.MustParsePath(p)).Get()
		var un *UnknownNamerError
		if a.State != watch.Failed || !errors.As(a.Err, &un) {
			t.Errorf("%s: %v (%v), want an unknown-namer error", p, a.State, a.Err)
		}
	}
	a := in.Bind(nil, dtab.MustParsePath("/$/inet/host/http")).Get()
	if want := "Unknown namer: inet for path: /$/inet/host/http"; a.Err == nil || a.Err.Error() != want {
		t.Errorf("error %v, want %q", a.Err, want)
	}
	// Literal addresses, including Java's IPv4 shorthands, need no DNS.
	for _, tc := range []struct{ path, want string }{
		{"/$/inet/127.1/8080", "127.0.0.1:8080"},
		{"/$/inet/10.258/1", "10.0.1.2:1"},
		{"/$/inet/::1/1", "[::1]:1"},
		{"/$/inet/9990", "127.0.0.1:9990"},
	} {
		b := in.Bind(nil, dtab.MustParsePath(tc.path)).Get()
		x := b.Value.Value.Addr.Get()
		if x.State != AddrBound || len(x.Addrs) != 1 || x.Addrs[0].HostPort() != tc.want {
			t.Errorf("%s: addr %+v, want %s", tc.path, x, tc.want)
		}
	}
	b := in.Bind(nil, dtab.MustParsePath("/$/inet/127.0.0.1/70000")).Get()
	if x := b.Value.Value.Addr.Get(); x.State != AddrFailed {
		t.Errorf("port 70000: addr %+v, want failed", x)
	}
}

type markTransformer struct{}

func (markTransformer) Transform(t BoundTree) BoundTree {
	return dtab.Map(t, func(b *Bound) *Bound {
		return &Bound{ID: dtab.Path{"%", "mark"}.Concat(b.ID), Residual: b.Residual, Addr: b.Addr}
	})
}

func TestTransformersApply(t *testing.T) {
	in := NewInterpreter(nil, WithTransformers(markTransformer{}))
	wantTree(t, in.Bind(nil, dtab.MustParsePath("/$/inet/127.0.0.1/1")).Get(), "/%/mark/$/inet/127.0.0.1/1+/")
}

func TestLocalDtab(t *testing.T) {
	d, src, err := LocalDtab([]string{"/a=>/b", "/a=>/c"}, []string{"/a=>/d;/e=>/f"})
	if err != nil || src != "" {
		t.Fatalf("err %v source %q", err, src)
	}
	if got, want := d.String(), "/a=>/b;/a=>/c;/a=>/d;/e=>/f"; got != want {
		t.Fatalf("local dtab %s, want %s", got, want)
	}
	for _, tc := range []struct {
		ctx, user []string
		source    string
	}{
		{[]string{"/a=>"}, nil, HeaderCtxDtab},
		{[]string{"/a=>/b"}, []string{"/a=>/b", "nope"}, HeaderUserDtab},
	} {
		_, src, err := LocalDtab(tc.ctx, tc.user)
		var pe *dtab.ParseError
		if !errors.As(err, &pe) || src != tc.source {
			t.Errorf("LocalDtab(%q, %q) = %v from %q, want a parse error from %s", tc.ctx, tc.user, err, src, tc.source)
		}
	}
	d, _, err = LocalDtab(nil, nil)
	if err != nil || len(d) != 0 {
		t.Fatalf("no headers: %v %v", d, err)
	}
}

func TestExponentialDtabIsRefused(t *testing.T) {
	// Every lookup doubles the tree: 2^100 lookups before the depth limit.
	in := NewInterpreter(nil)
	d := dtab.MustParse("/ => /a & /b")
	start := time.Now()
	a := in.Bind(d, dtab.MustParsePath("/svc")).Get()
	if a.State != watch.Failed || !errors.Is(a.Err, ErrBindTooComplex) {
		t.Fatalf("bind: %v %v, want ErrBindTooComplex", a.State, a.Err)
	}
	if _, err := Delegate(context.Background(), in, d, dtab.MustParsePath("/svc")); !errors.Is(err, ErrBindTooComplex) {
		t.Fatalf("delegate: %v, want ErrBindTooComplex", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
	// The budget is generous for real chains: the depth-limit vector's 100
	// lookups over a 100-element path still bind.
	long := "/p"
	for range 98 {
		long += "/p"
	}
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"world": nil})
	deep := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}})
	wantTree(t, deep.Bind(dtab.MustParse("/p => /"), dtab.MustParsePath(long+"/#/io.l5d.fs/world")).Get(), "/#/io.l5d.fs/world+/")
}

func TestInetAddrIsSharedWhileAlive(t *testing.T) {
	in := NewInterpreter(nil, WithHostResolver(func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}))
	func() { // the bound names are unreachable after this function
		sharedInetChecks(t, in)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		in.sys.mu.Lock()
		n := len(in.sys.dns)
		in.sys.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d DNS watches still registered after their names were dropped", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sharedInetChecks(t *testing.T, in *DefaultInterpreter) {
	a := in.Bind(nil, dtab.MustParsePath("/$/inet/svc.test/80/a")).Get()
	b := in.Bind(dtab.MustParse("/x => /$/inet/svc.test/80"), dtab.MustParsePath("/x/b")).Get()
	if a.Value.Value == b.Value.Value {
		t.Fatal("different residuals share a bound name")
	}
	if a.Value.Value.Addr != b.Value.Value.Addr {
		t.Fatal("two bound names of /$/inet/svc.test/80 watch DNS separately")
	}
	c := in.Bind(nil, dtab.MustParsePath("/$/fixedinet/svc.test/80")).Get()
	if c.Value.Value.Addr == a.Value.Value.Addr {
		t.Fatal("fixedinet shares inet's re-resolving watch")
	}
}

// The delegator shows what the interpreter's transformers do: each leaf
// is wrapped, innermost first, in a transformation node naming the
// transformer and the bound name it produced (spec/dtab.md §10.2, §10.4).
func TestExplainShowsTransformations(t *testing.T) {
	in := NewInterpreter(nil, WithTransformers(markTransformer{}, markTransformer{}))
	n, err := in.Explain(context.Background(), dtab.MustParse("/svc=>/$/inet/127.0.0.1"), dtab.MustParsePath("/svc/1"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(MarshalDelegateJSON(n))
	for _, want := range []string{
		`{"type":"delegate","path":"/svc/1"`,
		`"delegate":{"type":"transformation","path":"/$/inet/127.0.0.1/1","name":"mark","bound":{"addr":`,
		`"id":"/%/mark/%/mark/$/inet/127.0.0.1/1"`,
		`"tree":{"type":"transformation","path":"/$/inet/127.0.0.1/1","name":"mark"`,
		`"id":"/%/mark/$/inet/127.0.0.1/1"`,
		`"tree":{"type":"leaf","path":"/$/inet/127.0.0.1/1"`,
		`"id":"/$/inet/127.0.0.1/1"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %s:\n%s", want, got)
		}
	}
	// Without transformers, no transformation node.
	plain, err := NewInterpreter(nil).Explain(context.Background(), dtab.MustParse("/svc=>/$/inet/127.0.0.1"), dtab.MustParsePath("/svc/1"))
	if err != nil {
		t.Fatal(err)
	}
	if s := string(MarshalDelegateJSON(plain)); strings.Contains(s, "transformation") {
		t.Errorf("untransformed explanation has a transformation node: %s", s)
	}
}
