package transformers

import (
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func boundLeaf(name string, hostports ...naming.Address) naming.BoundTree {
	return dtab.LeafTree(&naming.Bound{ID: dtab.Path{"#", "io.l5d.fs", name}, Residual: dtab.Path{"in"},
		Addr: watch.NewVar(naming.Addr{State: naming.AddrBound, Addrs: hostports})})
}

// checkReplacement asserts b is the binding of /$/inet/127.0.0.1/4141/rest
// marked with kind.
func checkReplacement(t *testing.T, kind string, b *naming.Bound) {
	t.Helper()
	if b == nil {
		t.Fatal("nil bound name")
	}
	if want := "/%/" + kind + "/$/inet/127.0.0.1/4141/rest"; b.ID.String() != want || b.Residual.String() != "/rest" {
		t.Errorf("bound = %s %s; want %s /rest", b.ID, b.Residual, want)
	}
	a := b.Addr.Get()
	if a.State != naming.AddrBound || strings.Join(hosts(a.Addrs), ",") != "127.0.0.1:4141" {
		t.Errorf("addresses = %v %v; want 127.0.0.1:4141", a.State, hosts(a.Addrs))
	}
}

func TestReplaceTransformer(t *testing.T) {
	tr := load(t, "t: {kind: io.l5d.replace, path: /$/inet/127.0.0.1/4141/rest}")
	in := dtab.AltTree(
		dtab.NegTree[*naming.Bound](),
		dtab.UnionTree(
			dtab.Weighted[*naming.Bound]{Weight: 2, Tree: boundLeaf("a", naming.Address{Host: "10.0.0.1", Port: 80})},
			dtab.Weighted[*naming.Bound]{Weight: 5, Tree: boundLeaf("b")},
		),
		dtab.FailTree[*naming.Bound](),
		dtab.EmptyTree[*naming.Bound](),
	)
	out := tr.Transform(in)
	if out.Kind != dtab.Alt || len(out.Alts) != 4 || out.Alts[0].Kind != dtab.Neg || out.Alts[2].Kind != dtab.Fail || out.Alts[3].Kind != dtab.Empty {
		t.Fatalf("structure around the leaves changed: %+v", out)
	}
	u := out.Alts[1]
	if u.Kind != dtab.Union || len(u.Branches) != 2 || u.Branches[0].Weight != 2 || u.Branches[1].Weight != 5 {
		t.Fatalf("union changed: %+v", u)
	}
	for _, br := range u.Branches {
		if br.Tree.Kind != dtab.Leaf {
			t.Fatalf("branch %+v; want a leaf", br.Tree)
		}
		checkReplacement(t, "io.l5d.replace", br.Tree.Value)
	}
	// Negative, failed and empty results stay what they are.
	for _, k := range []dtab.Kind{dtab.Neg, dtab.Fail, dtab.Empty} {
		if got := tr.Transform(dtab.Tree[*naming.Bound]{Kind: k}); got.Kind != k {
			t.Errorf("Transform(%v) = %v; want it unchanged", k, got.Kind)
		}
	}
	// A single leaf becomes the replacement.
	checkReplacement(t, "io.l5d.replace", tr.Transform(boundLeaf("c")).Value)
}

// The replacement is itself a binding: /$/nil and /$/fail replace leaves
// by an empty or failed tree.
func TestReplaceWithConstantTrees(t *testing.T) {
	in := dtab.UnionTree(
		dtab.Weighted[*naming.Bound]{Weight: 1, Tree: boundLeaf("a")},
		dtab.Weighted[*naming.Bound]{Weight: 1, Tree: dtab.NegTree[*naming.Bound]()},
	)
	for path, want := range map[string]dtab.Kind{"/$/nil": dtab.Empty, "/$/fail": dtab.Fail} {
		out := load(t, "t: {kind: io.l5d.replace, path: "+path+"}").Transform(in)
		if out.Branches[0].Tree.Kind != want || out.Branches[1].Tree.Kind != dtab.Neg {
			t.Errorf("replace by %s: %v, %v; want %v, neg", path, out.Branches[0].Tree.Kind, out.Branches[1].Tree.Kind, want)
		}
	}
}

func TestConstTransformer(t *testing.T) {
	tr := load(t, "t: {kind: io.l5d.const, path: /$/inet/127.0.0.1/4141/rest}")
	for _, in := range []naming.BoundTree{
		boundLeaf("a", naming.Address{Host: "10.0.0.1", Port: 80}),
		dtab.NegTree[*naming.Bound](),
		dtab.FailTree[*naming.Bound](),
		dtab.EmptyTree[*naming.Bound](),
		dtab.AltTree(dtab.NegTree[*naming.Bound](), boundLeaf("b")),
		dtab.UnionTree(dtab.Weighted[*naming.Bound]{Weight: 1, Tree: boundLeaf("c")}),
	} {
		out := tr.Transform(in)
		if out.Kind != dtab.Leaf {
			t.Fatalf("Transform(%v) = %+v; want the constant leaf", in.Kind, out)
		}
		checkReplacement(t, "io.l5d.const", out.Value)
	}
	if got := load(t, "t: {kind: io.l5d.const, path: /$/nil}").Transform(boundLeaf("a")); got.Kind != dtab.Empty {
		t.Errorf("const /$/nil = %v; want empty", got.Kind)
	}
}

// A DNS name in the path stays a live address set that resolves when
// watched (localhost comes from /etc/hosts: no DNS traffic).
func TestConstDNSName(t *testing.T) {
	b := load(t, "t: {kind: io.l5d.const, path: /$/inet/localhost/4141}").Transform(dtab.NegTree[*naming.Bound]()).Value
	if b == nil || b.ID.String() != "/%/io.l5d.const/$/inet/localhost/4141" {
		t.Fatalf("bound = %+v", b)
	}
	done := make(chan naming.Addr, 1)
	cancel := b.Addr.Subscribe(func(a naming.Addr) {
		if a.State != naming.AddrPending {
			select {
			case done <- a:
			default:
			}
		}
	})
	defer cancel()
	var a naming.Addr
	select {
	case a = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("localhost did not resolve within 10s")
	}
	found := false
	for _, x := range a.Addrs {
		found = found || x.HostPort() == "127.0.0.1:4141"
	}
	if a.State != naming.AddrBound || !found {
		t.Errorf("localhost resolved to %v %v; want 127.0.0.1:4141 among them", a.State, hosts(a.Addrs))
	}
}

func TestReplaceConstConfigErrors(t *testing.T) {
	for _, kind := range []string{"io.l5d.replace", "io.l5d.const"} {
		for yaml, want := range map[string]string{
			"t: {kind: " + kind + "}":                                       "missing required key `path`",
			"t: {kind: " + kind + ", path: ''}":                             "t.path: must not be empty",
			"t: {kind: " + kind + ", path: 'not a path'}":                   `t.path: "not a path" is not a path`,
			"t: {kind: " + kind + ", path: /#}":                             `t.path: "/#" names no namer`,
			"t: {kind: " + kind + ", path: /svc/web}":                       `t.path: "/svc/web" is bound with an empty dtab`,
			"t: {kind: " + kind + ", path: /$/inet/1.2.3.4/80, prefix: /x}": "prefix",
		} {
			err := loadErr(yaml)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error = %v; want it to mention %q", yaml, err, want)
			}
		}
		// An unknown /$/ namer is found when the transformer is built.
		var c struct {
			T config.Kinded[naming.TransformerConfig] `yaml:"t"`
		}
		if err := config.Load([]byte("t: {kind: "+kind+", path: /$/nosuch/x}"), &c); err != nil {
			t.Fatal(err)
		}
		_, err := c.T.Value.NewTransformer(naming.Env{})
		if err == nil || !strings.Contains(err.Error(), kind+": path: \"/$/nosuch/x\" does not bind: Unknown namer: nosuch") {
			t.Errorf("%s /$/nosuch/x: error = %v; want a startup error naming the path", kind, err)
		}
	}
}
