package transformers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	_ "github.com/linnet-mesh/linnet/internal/namer/fs" // io.l5d.fs
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// fsSetup mounts the `namers:` of yaml (which may use $DIR for a fresh
// temp dir) and builds the transformer `t:` with them, as routerd does.
type fsSetup struct {
	dir    string
	namers []naming.MountedNamer
	tr     naming.Transformer
}

func setupNamers(t *testing.T, yaml string) *fsSetup {
	t.Helper()
	s := &fsSetup{dir: t.TempDir()}
	var c struct {
		Namers []config.Kinded[naming.NamerConfig]     `yaml:"namers"`
		T      config.Kinded[naming.TransformerConfig] `yaml:"t"`
	}
	if err := config.Load([]byte(strings.ReplaceAll(yaml, "$DIR", s.dir)), &c); err != nil {
		t.Fatalf("%s: %v", yaml, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	env := naming.Env{Ctx: ctx}
	namers, closers, err := naming.MountNamers(env, telemetry.NewRegistry().Scope(), c.Namers)
	for _, cl := range closers {
		t.Cleanup(func() { _ = cl() })
	}
	if err != nil {
		t.Fatal(err)
	}
	s.namers = namers
	env.Namers = namers
	if s.tr, err = c.T.Value.NewTransformer(env); err != nil {
		t.Fatal(err)
	}
	return s
}

// write replaces the file name atomically (the namer never reads half of it).
func (s *fsSetup) write(t *testing.T, name, text string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		t.Fatal(err)
	}
}

// addrWatch records the values an address set pushes.
type addrWatch struct {
	mu   sync.Mutex
	last naming.Addr
	ch   chan struct{}
}

func watchAddr(t *testing.T, v watch.Value[naming.Addr]) (*addrWatch, func()) {
	t.Helper()
	w := &addrWatch{ch: make(chan struct{}, 1)}
	cancel := v.Subscribe(func(a naming.Addr) {
		w.mu.Lock()
		w.last = a
		w.mu.Unlock()
		select {
		case w.ch <- struct{}{}:
		default:
		}
	})
	t.Cleanup(cancel)
	return w, cancel
}

func describe(a naming.Addr) string {
	switch a.State {
	case naming.AddrPending:
		return "pending"
	case naming.AddrNeg:
		return "neg"
	case naming.AddrFailed:
		return "failed: " + a.Err.Error()
	}
	return "bound " + strings.Join(hosts(a.Addrs), ",")
}

// await waits until the address set is described as want.
func (w *addrWatch) await(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		got := describe(w.last)
		w.mu.Unlock()
		if got == want {
			return
		}
		select {
		case <-w.ch:
		case <-deadline:
			t.Fatalf("address set is %q after 10s; want %q", got, want)
		}
	}
}

// subscribers counts the subscriptions of v if it is a *watch.Var.
func subscribers(t *testing.T, v any) int {
	t.Helper()
	s, ok := v.(interface{ Subscribers() int })
	if !ok {
		t.Fatalf("%T does not count its subscribers", v)
	}
	return s.Subscribers()
}

// io.l5d.replace with a /#/ path binds it through the io.l5d.fs namer and
// follows the file: its address changes, its removal (negative) and its
// return. Negative input names stay negative; the watch of the namer
// ends with the last watcher.
func TestReplaceNamerPathFollowsFsNamer(t *testing.T) {
	s := setupNamers(t, `
namers: [{kind: io.l5d.fs, rootDir: $DIR}]
t: {kind: io.l5d.replace, path: /#/io.l5d.fs/web}`)
	s.write(t, "web", "127.0.0.1 8080\n")
	fs := s.namers[0].Namer
	// The namer picks the new file up.
	waitAnswer(t, fs, "web", dtab.Leaf)

	out := s.tr.Transform(dtab.UnionTree(
		dtab.Weighted[*naming.Bound]{Weight: 1, Tree: boundLeaf("a")},
		dtab.Weighted[*naming.Bound]{Weight: 1, Tree: dtab.NegTree[*naming.Bound]()},
	))
	if out.Kind != dtab.Union || out.Branches[0].Tree.Kind != dtab.Leaf || out.Branches[1].Tree.Kind != dtab.Neg {
		t.Fatalf("Transform = %+v; want the bound branch replaced and the negative one kept", out)
	}
	b := out.Branches[0].Tree.Value
	if b.ID.String() != "/%/io.l5d.replace/#/io.l5d.fs/web" {
		t.Errorf("id %s; want /%%/io.l5d.replace/#/io.l5d.fs/web", b.ID)
	}
	if b2 := s.tr.Transform(boundLeaf("b")).Value; b2 != b {
		t.Errorf("a second transform gave another bound name %p; want the same %p (one client)", b2, b)
	}
	// Unwatched, Get samples the namer.
	if got := describe(b.Addr.Get()); got != "bound 127.0.0.1:8080" {
		t.Errorf("Get = %q; want bound 127.0.0.1:8080", got)
	}

	w, cancel := watchAddr(t, b.Addr)
	w.await(t, "bound 127.0.0.1:8080")
	s.write(t, "web", "127.0.0.2 9090\n127.0.0.3 9090\n")
	w.await(t, "bound 127.0.0.2:9090,127.0.0.3:9090")
	if err := os.Remove(filepath.Join(s.dir, "web")); err != nil {
		t.Fatal(err)
	}
	w.await(t, "neg")
	s.write(t, "web", "127.0.0.4 80\n")
	w.await(t, "bound 127.0.0.4:80")

	// A second watcher shares the watch; after both stop, the namer's
	// lookup and address set have no watcher left.
	w2, cancel2 := watchAddr(t, b.Addr)
	w2.await(t, "bound 127.0.0.4:80")
	lookup := fs.Lookup(dtab.Path{"web"})
	leaf := lookup.Get().Value.Value.Bound
	if subscribers(t, lookup) == 0 || subscribers(t, leaf.Addr) == 0 {
		t.Fatalf("while watched: %d lookup and %d address subscribers; want the binding's", subscribers(t, lookup), subscribers(t, leaf.Addr))
	}
	cancel()
	if subscribers(t, lookup) == 0 {
		t.Fatal("one watcher left, but the namer is no longer watched")
	}
	cancel2()
	if n, m := subscribers(t, lookup), subscribers(t, leaf.Addr); n != 0 || m != 0 {
		t.Errorf("after the last watcher: %d lookup and %d address subscribers; want none", n, m)
	}
	// Watching again starts over with the current answer.
	s.write(t, "web", "127.0.0.5 80\n")
	waitAddrs(t, leaf.Addr, "bound 127.0.0.5:80")
	w3, _ := watchAddr(t, b.Addr)
	w3.await(t, "bound 127.0.0.5:80")
}

// waitAnswer waits until the fs namer answers name with a tree of kind k.
func waitAnswer(t *testing.T, n naming.Namer, name string, k dtab.Kind) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := n.Lookup(dtab.Path{name}).Get()
		if a.State == watch.Ok && a.Value.Kind == k {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namer answers %v %v for %s; want %v", a.State, a.Value.Kind, name, k)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitAddrs(t *testing.T, v watch.Value[naming.Addr], want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for got := describe(v.Get()); got != want; got = describe(v.Get()) {
		if time.Now().After(deadline) {
			t.Fatalf("address set %q; want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// io.l5d.const with a /#/ path: every input, negative ones included,
// becomes the namer's name, live; a prefix and the namer's own
// transformers apply as in the router's binding.
func TestConstNamerPathWithPrefixAndNamerTransformers(t *testing.T) {
	s := setupNamers(t, `
namers:
- kind: io.l5d.fs
  prefix: /disco
  rootDir: $DIR
  transformers: [{kind: io.l5d.port, port: 4141}]
t: {kind: io.l5d.const, path: /#/disco/web}`)
	s.write(t, "web", "127.0.0.1 8080\n127.0.0.2 8080\n")
	waitAnswer(t, s.namers[0].Namer, "web", dtab.Leaf)
	for _, in := range []naming.BoundTree{boundLeaf("a"), dtab.NegTree[*naming.Bound](), dtab.FailTree[*naming.Bound]()} {
		out := s.tr.Transform(in)
		if out.Kind != dtab.Leaf || out.Value.ID.String() != "/%/io.l5d.const/#/disco/web" {
			t.Fatalf("Transform(%v) = %+v; want the constant /%%/io.l5d.const/#/disco/web", in.Kind, out)
		}
	}
	w, _ := watchAddr(t, s.tr.Transform(dtab.NegTree[*naming.Bound]()).Value.Addr)
	w.await(t, "bound 127.0.0.1:4141,127.0.0.2:4141")
	s.write(t, "web", "127.0.0.3 8080\n")
	w.await(t, "bound 127.0.0.3:4141")
}

// fakeNamer answers each path from a Var the test sets.
type fakeNamer struct {
	mu      sync.Mutex
	answers map[string]*watch.Var[watch.Activity[dtab.Tree[naming.Name]]]
}

func (f *fakeNamer) answer(path string) *watch.Var[watch.Activity[dtab.Tree[naming.Name]]] {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answers == nil {
		f.answers = map[string]*watch.Var[watch.Activity[dtab.Tree[naming.Name]]]{}
	}
	v := f.answers[path]
	if v == nil {
		v = watch.NewVar(watch.OkActivity(dtab.NegTree[naming.Name]()))
		f.answers[path] = v
	}
	return v
}

func (f *fakeNamer) Lookup(p dtab.Path) naming.Lookup { return f.answer(p.String()) }

func name(b *naming.Bound) dtab.Tree[naming.Name] { return dtab.LeafTree(naming.Name{Bound: b}) }

func addrVar(hostports ...naming.Address) *watch.Var[naming.Addr] {
	return watch.NewVar(naming.Addr{State: naming.AddrBound, Addrs: hostports})
}

// Every state of the namer's answer reaches the address set: pending,
// failed, negative, a leaf, an alternative (the first that exists), a
// union (merged, each branch keeping its share), and a path the namer
// leaves to delegate further, bound again through the namers.
func TestLiveReplacementStates(t *testing.T) {
	f := &fakeNamer{}
	namers := []naming.MountedNamer{{Prefix: dtab.Path{"#", "fake"}, Namer: f}}
	tr, err := (&ReplaceConfig{Path: "/#/fake/svc"}).NewTransformer(naming.Env{Namers: namers})
	if err != nil {
		t.Fatal(err)
	}
	b := tr.Transform(boundLeaf("in")).Value
	w, cancel := watchAddr(t, b.Addr)
	ans := f.answer("/svc")
	w.await(t, "neg")

	ans.Set(watch.PendingActivity[dtab.Tree[naming.Name]]())
	w.await(t, "pending")
	ans.Set(watch.FailedActivity[dtab.Tree[naming.Name]](errors.New("zk is down")))
	w.await(t, "failed: binding /#/fake/svc: zk is down")

	a1 := addrVar(naming.Address{Host: "10.0.0.1", Port: 80})
	l1 := &naming.Bound{ID: dtab.Path{"#", "fake", "one"}, Addr: a1}
	ans.Set(watch.OkActivity(name(l1)))
	w.await(t, "bound 10.0.0.1:80")
	a1.Set(naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{{Host: "10.0.0.9", Port: 80}}})
	w.await(t, "bound 10.0.0.9:80")
	a1.Set(naming.Addr{State: naming.AddrNeg})
	w.await(t, "neg")

	a2 := addrVar(naming.Address{Host: "10.0.0.2", Port: 80}, naming.Address{Host: "10.0.0.3", Port: 80})
	l2 := &naming.Bound{ID: dtab.Path{"#", "fake", "two"}, Addr: a2}
	ans.Set(watch.OkActivity(dtab.AltTree(dtab.NegTree[naming.Name](), name(l2))))
	w.await(t, "bound 10.0.0.2:80,10.0.0.3:80")
	// Binding takes the first alternative that is a name, as Finagle does,
	// whatever its address set: l1, still negative.
	ans.Set(watch.OkActivity(dtab.AltTree(name(l1), name(l2))))
	w.await(t, "neg")
	a1.Set(naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{{Host: "10.0.0.1", Port: 80}}})
	w.await(t, "bound 10.0.0.1:80")

	ans.Set(watch.OkActivity(dtab.UnionTree(
		dtab.Weighted[naming.Name]{Weight: 3, Tree: name(l1)},
		dtab.Weighted[naming.Name]{Weight: 1, Tree: name(l2)},
	)))
	w.await(t, "bound 10.0.0.1:80,10.0.0.2:80,10.0.0.3:80")
	w.mu.Lock()
	weights := []float64{}
	for _, a := range w.last.Addrs {
		weights = append(weights, a.Weight)
	}
	w.mu.Unlock()
	if !slices.Equal(weights, []float64{3, 0.5, 0.5}) {
		t.Errorf("union weights %v; want [3 0.5 0.5] (the branches keep their 3:1 share)", weights)
	}

	// A path to delegate further: bound through the namers again.
	ans.Set(watch.OkActivity(dtab.LeafTree(naming.Name{Path: dtab.Path{"#", "fake", "other"}})))
	f.answer("/other").Set(watch.OkActivity(name(l2)))
	w.await(t, "bound 10.0.0.2:80,10.0.0.3:80")

	// Leaves no longer in the answer are no longer watched; after cancel,
	// nothing is.
	if n := subscribers(t, a1); n != 0 {
		t.Errorf("l1 left the answer but has %d subscribers", n)
	}
	cancel()
	for what, n := range map[string]int{"answer": subscribers(t, ans), "other": subscribers(t, f.answer("/other")), "l2": subscribers(t, a2)} {
		if n != 0 {
			t.Errorf("after cancel, %s has %d subscribers; want none", what, n)
		}
	}
}

// Concurrent watchers and changes: -race finds unguarded state, and the
// last value pushed is the namer's last one.
func TestLiveReplacementConcurrent(t *testing.T) {
	f := &fakeNamer{}
	namers := []naming.MountedNamer{{Prefix: dtab.Path{"#", "fake"}, Namer: f}}
	tr, err := (&ConstConfig{Path: "/#/fake/svc"}).NewTransformer(naming.Env{Namers: namers})
	if err != nil {
		t.Fatal(err)
	}
	addr := tr.Transform(dtab.NegTree[*naming.Bound]()).Value.Addr
	a := addrVar(naming.Address{Host: "10.0.0.1", Port: 1})
	f.answer("/svc").Set(watch.OkActivity(name(&naming.Bound{ID: dtab.Path{"#", "fake", "svc"}, Addr: a})))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				cancel := addr.Subscribe(func(naming.Addr) {})
				if j%3 == i%3 {
					_ = addr.Get()
				}
				cancel()
			}
		})
	}
	w, _ := watchAddr(t, addr)
	for p := 1; p <= 100; p++ {
		a.Set(naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{{Host: "10.0.0.1", Port: p}}})
	}
	wg.Wait()
	w.await(t, "bound 10.0.0.1:100")
}

// The delegator shows the replacement, with the namer's current address
// set, as the transformation of the bound leaf.
func TestLiveReplacementInDelegator(t *testing.T) {
	s := setupNamers(t, `
namers: [{kind: io.l5d.fs, rootDir: $DIR}]
t: {kind: io.l5d.replace, path: /#/io.l5d.fs/daemon}`)
	s.write(t, "daemon", "127.0.0.7 4141\n")
	s.write(t, "web", "127.0.0.1 8080\n")
	waitAnswer(t, s.namers[0].Namer, "daemon", dtab.Leaf)
	waitAnswer(t, s.namers[0].Namer, "web", dtab.Leaf)
	in := naming.NewInterpreter(s.namers, naming.WithTransformers(s.tr))
	d, err := dtab.Parse("/svc => /#/io.l5d.fs")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := in.Explain(ctx, d, dtab.Path{"svc", "web"})
	if err != nil {
		t.Fatal(err)
	}
	for n.Kind == naming.DelegateDelegated {
		n = *n.Child
	}
	if n.Kind != naming.DelegateTransformation || n.Name != "io.l5d.replace" || n.Bound.ID.String() != "/%/io.l5d.replace/#/io.l5d.fs/daemon" {
		t.Fatalf("delegator node %v %q %v; want the io.l5d.replace transformation", n.Kind, n.Name, n.Bound)
	}
	if got := describe(n.Addr); got != "bound 127.0.0.7:4141" {
		t.Errorf("transformation address set %q; want bound 127.0.0.7:4141", got)
	}
	if n.Child == nil || n.Child.Bound.ID.String() != "/#/io.l5d.fs/web" {
		t.Errorf("transformed leaf %+v; want /#/io.l5d.fs/web", n.Child)
	}
	// And the binding itself, watched, is the replacement.
	bw, _ := watchAddr(t, mustLeaf(t, in.Bind(d, dtab.Path{"svc", "web"})).Addr)
	bw.await(t, "bound 127.0.0.7:4141")
	s.write(t, "daemon", "127.0.0.8 4141\n")
	bw.await(t, "bound 127.0.0.8:4141")
}

func mustLeaf(t *testing.T, b naming.Binding) *naming.Bound {
	t.Helper()
	a := b.Get()
	if a.State != watch.Ok || a.Value.Kind != dtab.Leaf {
		t.Fatalf("binding %v %v; want a leaf", a.State, a.Value.Kind)
	}
	return a.Value.Value
}

// A /#/ path that no configured namer serves is a startup error naming
// the key and the value, through the interpreter's transformer list too.
func TestNamerPathErrors(t *testing.T) {
	namers := []naming.MountedNamer{{Prefix: dtab.Path{"#", "io.l5d.fs"}, Namer: &fakeNamer{}}}
	for _, kind := range []string{"io.l5d.replace", "io.l5d.const"} {
		var c struct {
			T []config.Kinded[naming.TransformerConfig] `yaml:"t"`
		}
		if err := config.Load([]byte("t: [{kind: io.l5d.port, port: 1}, {kind: "+kind+", path: /#/io.l5d.k8s/default/http/web}]"), &c); err != nil {
			t.Fatal(err)
		}
		_, err := naming.NewTransformers(naming.Env{Namers: namers}, c.T)
		want := `interpreter.transformers[1].path (` + kind + `): "/#/io.l5d.k8s/default/http/web": no configured namer is mounted at /#/io.l5d.k8s (namers are mounted at /#/io.l5d.fs)`
		if err == nil || err.Error() != want {
			t.Errorf("%s: error = %v\nwant %s", kind, err, want)
		}
		// Without namers (none configured, or a namer's own transformers).
		_, err = c.T[1].Value.NewTransformer(naming.Env{})
		if err == nil || !strings.Contains(err.Error(), kind+`: path: "/#/io.l5d.k8s/default/http/web" names a namer, but none is available here`) {
			t.Errorf("%s without namers: error = %v", kind, err)
		}
	}
}
