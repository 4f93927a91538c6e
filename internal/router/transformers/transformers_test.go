package transformers

import (
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func load(t *testing.T, yaml string) naming.Transformer {
	t.Helper()
	var c struct {
		T config.Kinded[naming.TransformerConfig] `yaml:"t"`
	}
	if err := config.Load([]byte(yaml), &c); err != nil {
		t.Fatalf("%s: %v", yaml, err)
	}
	tr, err := c.T.Value.NewTransformer(naming.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestPortTransformer(t *testing.T) {
	addr := watch.NewVar(naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{
		{Host: "10.0.0.1", Port: 7777}, {Host: "10.0.0.2", Port: 7777}, {Host: "10.0.0.1", Port: 7778},
	}})
	in := dtab.UnionTree(
		dtab.Weighted[*naming.Bound]{Weight: 1, Tree: dtab.LeafTree(&naming.Bound{ID: dtab.Path{"#", "io.l5d.fs", "hello"}, Residual: dtab.Path{"x"}, Addr: addr})},
		dtab.Weighted[*naming.Bound]{Weight: 1, Tree: dtab.NegTree[*naming.Bound]()},
	)
	out := load(t, "t: {kind: io.l5d.port, port: 4141}").Transform(in)
	b := out.Branches[0].Tree.Value
	if b.ID.String() != "/%/io.l5d.port/4141/#/io.l5d.fs/hello" || b.Residual.String() != "/x" {
		t.Errorf("bound = %s %s; want the marker prefix and the residual kept", b.ID, b.Residual)
	}
	if out.Branches[1].Tree.Kind != dtab.Neg {
		t.Errorf("negative branch changed")
	}
	var got []naming.Addr
	cancel := b.Addr.Subscribe(func(a naming.Addr) { got = append(got, a) })
	defer cancel()
	addr.Set(naming.Addr{State: naming.AddrNeg})
	if len(got) != 2 || len(got[0].Addrs) != 2 || got[0].Addrs[0].Port != 4141 || got[0].Addrs[1].Host != "10.0.0.2" || got[1].State != naming.AddrNeg {
		t.Errorf("addresses = %+v; want two hosts on port 4141 (duplicates merged), then negative", got)
	}
}

func TestLocalhostTransformer(t *testing.T) {
	addr := watch.Const[naming.Addr]{V: naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{
		{Host: "127.0.0.1", Port: 1}, {Host: "192.0.2.77", Port: 2},
	}}}
	out := load(t, "t: {kind: io.l5d.localhost}").Transform(dtab.LeafTree(&naming.Bound{ID: dtab.Path{"#", "x"}, Addr: addr}))
	if out.Value.ID.String() != "/%/io.l5d.localhost/#/x" {
		t.Errorf("id = %s", out.Value.ID)
	}
	a := out.Value.Addr.Get()
	if len(a.Addrs) != 1 || a.Addrs[0].Host != "127.0.0.1" {
		t.Errorf("addresses = %+v; want only the local 127.0.0.1", a.Addrs)
	}
}

func TestPortTransformerConfig(t *testing.T) {
	for _, bad := range []string{"t: {kind: io.l5d.port}", "t: {kind: io.l5d.port, port: 70000}"} {
		var c struct {
			T config.Kinded[naming.TransformerConfig] `yaml:"t"`
		}
		if err := config.Load([]byte(bad), &c); err == nil {
			t.Errorf("%s loaded; want an error", bad)
		}
	}
}
