package naming

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func leaf(id string) BoundTree {
	return dtab.LeafTree(&Bound{ID: dtab.MustParsePath(id), Addr: watch.Const[Addr]{V: Addr{State: AddrBound}}})
}

func union(ws ...any) BoundTree {
	var bs []dtab.Weighted[*Bound]
	for i := 0; i < len(ws); i += 2 {
		bs = append(bs, dtab.Weighted[*Bound]{Weight: ws[i].(float64), Tree: ws[i+1].(BoundTree)})
	}
	return dtab.UnionTree(bs...)
}

func TestPickFollowsWeights(t *testing.T) {
	// 1 * (1 * a & 3 * b) & 1 * c: a 12.5 %, b 37.5 %, c 50 % (spec/dtab.md §8).
	tree := union(1.0, union(1.0, leaf("/a"), 3.0, leaf("/b")), 1.0, leaf("/c"))
	counts := map[string]int{}
	const n = 8000
	// A deterministic, evenly spread sequence of random numbers.
	i := 0
	seq := []float64{}
	rnd := func() float64 {
		r := seq[i%len(seq)]
		i++
		return r
	}
	for k := range n {
		seq = append(seq, (float64(k)+0.5)/n)
	}
	// Every pick draws once per union level; draw pairs so both levels see
	// the whole range.
	for a := range 80 {
		for b := range 100 {
			seq = []float64{(float64(a) + 0.5) / 80, (float64(b) + 0.5) / 100}
			i = 0
			bd, err := Pick(tree, rnd)
			if err != nil {
				t.Fatal(err)
			}
			counts[bd.ID.String()]++
		}
	}
	if counts["/a"] != 1000 || counts["/b"] != 3000 || counts["/c"] != 4000 {
		t.Fatalf("picks %v, want /a 1000, /b 3000, /c 4000", counts)
	}
	shares := Shares(tree)
	want := []struct {
		id    string
		share float64
	}{{"/a", 0.125}, {"/b", 0.375}, {"/c", 0.5}}
	if len(shares) != len(want) {
		t.Fatalf("shares %+v", shares)
	}
	for k, w := range want {
		if shares[k].Bound.ID.String() != w.id || shares[k].Share != w.share {
			t.Errorf("share %d = %s %v, want %s %v", k, shares[k].Bound.ID, shares[k].Share, w.id, w.share)
		}
	}
}

func TestPickFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		tree BoundTree
		r    float64
	}{
		{"neg", dtab.NegTree[*Bound](), 0},
		{"fail", dtab.FailTree[*Bound](), 0},
		{"empty", dtab.EmptyTree[*Bound](), 0},
		{"empty branch", union(1.0, leaf("/a"), 1.0, dtab.EmptyTree[*Bound]()), 0.75},
	} {
		if b, err := Pick(tc.tree, func() float64 { return tc.r }); !errors.Is(err, ErrNoBound) {
			t.Errorf("%s: Pick = %v, %v, want ErrNoBound", tc.name, b, err)
		}
	}
	// Zero weights share uniformly; the empty branch of "/a & $" takes the upper half.
	tree := union(0.0, leaf("/a"), 0.0, leaf("/b"))
	for _, tc := range []struct {
		r    float64
		want string
	}{{0, "/a"}, {0.49, "/a"}, {0.5, "/b"}, {0.999999, "/b"}} {
		b, err := Pick(tree, func() float64 { return tc.r })
		if err != nil || b.ID.String() != tc.want {
			t.Errorf("zero weights, r=%v: %v %v, want %s", tc.r, b, err, tc.want)
		}
	}
	if b, err := Pick(union(1.0, leaf("/a"), 1.0, dtab.EmptyTree[*Bound]()), func() float64 { return 0.25 }); err != nil || b.ID.String() != "/a" {
		t.Errorf("lower half: %v %v", b, err)
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	tree := union(1.0, union(1.0, leaf("/a"), 3.0, leaf("/b")), 1.0, leaf("/c"))
	rnd := func() float64 { return 0.3 }
	if n := testing.AllocsPerRun(100, func() { _, _ = Pick(tree, rnd) }); n != 0 {
		t.Fatalf("Pick allocates %v times", n)
	}
}

func TestDelegateJSONIsByteExact(t *testing.T) {
	// The example of spec/dtab.md §10.4, keys in Linkerd's order.
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"world": {addr("10.0.0.1", 8080)}})
	in := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}})
	d := dtab.MustParse("/svc => /#/io.l5d.fs; /svc/world => /#/io.l5d.fs/missing")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := Delegate(ctx, in, d, dtab.MustParsePath("/svc/world"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"alt","path":"/svc/world","alt":[` +
		`{"type":"neg","path":"/#/io.l5d.fs/missing","dentry":{"prefix":"/svc/world","dst":"/#/io.l5d.fs/missing"}},` +
		`{"type":"leaf","path":"/#/io.l5d.fs/world","dentry":{"prefix":"/svc","dst":"/#/io.l5d.fs"},` +
		`"bound":{"addr":{"type":"bound","addrs":[{"ip":"10.0.0.1","port":8080,"meta":{}}],"meta":{}},` +
		`"id":"/#/io.l5d.fs/world","path":"/"}}]}`
	if got := string(MarshalDelegateJSON(n)); got != want {
		t.Fatalf("delegate JSON\n got: %s\nwant: %s", got, want)
	}
}

func TestDelegateUnionWeightsAndAmpersand(t *testing.T) {
	in := NewInterpreter(nil)
	d := dtab.MustParse("/s => 0.9 * /$/inet/127.0.0.1/1 & 0.1 * /$/nil")
	n, err := Delegate(context.Background(), in, d, dtab.MustParsePath("/s"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"union","path":"/s","union":[` +
		`{"weight":0.9,"tree":{"type":"leaf","path":"/$/inet/127.0.0.1/1","dentry":{"prefix":"/s","dst":"0.90*/$/inet/127.0.0.1/1 & 0.10*/$/nil"},` +
		`"bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":1,"meta":{}}],"meta":{}},"id":"/$/inet/127.0.0.1/1","path":"/"}}},` +
		`{"weight":0.1,"tree":{"type":"empty","path":"/$/nil","dentry":{"prefix":"/s","dst":"0.90*/$/inet/127.0.0.1/1 & 0.10*/$/nil"}}}]}`
	if got := string(MarshalDelegateJSON(n)); got != want {
		t.Fatalf("delegate JSON\n got: %s\nwant: %s", got, want)
	}
}

func TestDelegateErrors(t *testing.T) {
	in := NewInterpreter(nil)
	// A loop outside any alternation fails the request.
	_, err := Delegate(context.Background(), in, dtab.MustParse("/a => /b; /b => /a"), dtab.MustParsePath("/a"))
	if !errors.Is(err, ErrMaxDepth) || err.Error() != "Max recursion level reached." {
		t.Fatalf("loop: %v", err)
	}
	// Inside a union it becomes an exception node.
	n, err := Delegate(context.Background(), in, dtab.MustParse("/a => /b & /$/nil; /b => /c; /c => /b"), dtab.MustParsePath("/a"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"union","path":"/a","union":[` +
		`{"weight":1.0,"tree":{"type":"exception","path":"/a","dentry":{"prefix":"/a","dst":"/b & /$/nil"},"message":"Max recursion level reached."}},` +
		`{"weight":1.0,"tree":{"type":"empty","path":"/$/nil","dentry":{"prefix":"/a","dst":"/b & /$/nil"}}}]}`
	if got := string(MarshalDelegateJSON(n)); got != want {
		t.Fatalf("union loop\n got: %.600s\nwant: %s", got, want)
	}
	// A namer that never answers runs into the deadline.
	p := NewStaticNamer(dtab.MustParsePath("/#/p"), nil)
	p.SetPending("x")
	slow := NewInterpreter([]MountedNamer{{Prefix: dtab.MustParsePath("/#/p"), Namer: p}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := Delegate(ctx, slow, nil, dtab.MustParsePath("/#/p/x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pending namer: %v, want deadline exceeded", err)
	}
	if n := p.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left by the delegator", n)
	}
	// An interpreter that cannot explain.
	if _, err := Delegate(context.Background(), onlyBind{}, nil, dtab.Path{"a"}); !errors.Is(err, ErrCannotExplain) {
		t.Fatalf("non-explainer: %v", err)
	}
}

type onlyBind struct{}

func (onlyBind) Bind(dtab.Dtab, dtab.Path) Binding {
	return watch.Const[watch.Activity[BoundTree]]{V: watch.OkActivity(dtab.NegTree[*Bound]())}
}

func TestAddrJSON(t *testing.T) {
	for _, tc := range []struct {
		a    Addr
		want string
	}{
		{Addr{State: AddrPending}, `{"type":"pending"}`},
		{Addr{State: AddrNeg}, `{"type":"neg"}`},
		{Addr{State: AddrFailed, Err: errors.New(`bad "name" <&>`)}, `{"type":"failed","cause":"bad \"name\" <&>"}`},
		{Addr{State: AddrBound}, `{"type":"bound","addrs":[],"meta":{}}`},
		{Addr{State: AddrBound, Addrs: []Address{
			{Host: "10.1.2.3", Port: 7777, Weight: 1, Meta: map[string]any{"nodeName": "node-a", "authority": "a&b"}},
			{Host: "::1", Port: 80, Weight: 2.5},
		}, Meta: map[string]any{"n": 3}},
			`{"type":"bound","addrs":[{"ip":"10.1.2.3","port":7777,"meta":{"authority":"a&b","nodeName":"node-a"}},` +
				`{"ip":"::1","port":80,"meta":{"endpoint_addr_weight":2.5}}],"meta":{"n":3}}`},
	} {
		if got := string(MarshalAddrJSON(tc.a)); got != tc.want {
			t.Errorf("addr JSON\n got: %s\nwant: %s", got, tc.want)
		}
	}
}

func TestBoundTreeJSON(t *testing.T) {
	a := &Bound{ID: dtab.MustParsePath("/#/io.l5d.fs/world"), Addr: watch.Const[Addr]{V: Addr{State: AddrPending}}}
	tree := union(0.9, dtab.LeafTree(a), 0.1, dtab.EmptyTree[*Bound]())
	snap := map[*Bound]Addr{a: {State: AddrBound, Addrs: []Address{addr("10.0.0.1", 8080)}}}
	want := `{"type":"union","union":[{"weight":0.9,"tree":{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[{"ip":"10.0.0.1","port":8080,"meta":{}}],"meta":{}},"id":"/#/io.l5d.fs/world","path":"/"}}},{"weight":0.1,"tree":{"type":"empty"}}]}`
	if got := string(MarshalBoundTreeJSON(tree, snap)); got != want {
		t.Fatalf("bound tree JSON\n got: %s\nwant: %s", got, want)
	}
	// Without a snapshot the current address set is used.
	if got, want := string(MarshalBoundTreeJSON(dtab.LeafTree(a), nil)), `{"type":"leaf","bound":{"addr":{"type":"pending"},"id":"/#/io.l5d.fs/world","path":"/"}}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	for _, c := range []struct {
		t    BoundTree
		want string
	}{{dtab.NegTree[*Bound](), `{"type":"neg"}`}, {dtab.FailTree[*Bound](), `{"type":"fail"}`}} {
		if got := string(MarshalBoundTreeJSON(c.t, nil)); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}
