package transformers

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func loadErr(yaml string) error {
	var c struct {
		T config.Kinded[naming.TransformerConfig] `yaml:"t"`
	}
	return config.Load([]byte(yaml), &c)
}

func hosts(as []naming.Address) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.HostPort())
	}
	return out
}

func TestSpecificHostTransformer(t *testing.T) {
	addr := watch.NewVar(naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{
		{Host: "127.0.0.1", Port: 1}, {Host: "127.0.0.2", Port: 2}, {Host: "::ffff:127.0.0.1", Port: 3}, {Host: "10.0.0.1", Port: 4},
	}})
	leaf := func(name string) naming.BoundTree {
		return dtab.LeafTree(&naming.Bound{ID: dtab.Path{"#", "io.l5d.fs", name}, Residual: dtab.Path{"r"}, Addr: addr})
	}
	in := dtab.AltTree(
		dtab.NegTree[*naming.Bound](),
		dtab.UnionTree(
			dtab.Weighted[*naming.Bound]{Weight: 3, Tree: leaf("a")},
			dtab.Weighted[*naming.Bound]{Weight: 1, Tree: dtab.FailTree[*naming.Bound]()},
		),
		dtab.EmptyTree[*naming.Bound](),
	)
	out := load(t, "t: {kind: io.l5d.specificHost, host: 127.0.0.1}").Transform(in)
	if out.Kind != dtab.Alt || len(out.Alts) != 3 || out.Alts[0].Kind != dtab.Neg || out.Alts[2].Kind != dtab.Empty {
		t.Fatalf("shape changed: %+v", out)
	}
	u := out.Alts[1]
	if u.Kind != dtab.Union || u.Branches[0].Weight != 3 || u.Branches[1].Tree.Kind != dtab.Fail {
		t.Fatalf("union changed: %+v", u)
	}
	b := u.Branches[0].Tree.Value
	if b.ID.String() != "/%/io.l5d.specificHost/#/io.l5d.fs/a" || b.Residual.String() != "/r" {
		t.Errorf("bound = %s %s; want the marker prefix and the residual kept", b.ID, b.Residual)
	}
	if got := hosts(b.Addr.Get().Addrs); strings.Join(got, ",") != "127.0.0.1:1,[::ffff:127.0.0.1]:3" {
		t.Errorf("addresses = %v; want only 127.0.0.1's (IPv4-mapped included)", got)
	}

	// The address set stays live: updates are filtered, other states pass.
	var got []naming.Addr
	cancel := b.Addr.Subscribe(func(a naming.Addr) { got = append(got, a) })
	defer cancel()
	addr.Set(naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{{Host: "127.0.0.2", Port: 9}, {Host: "127.0.0.1", Port: 8}}})
	addr.Set(naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{{Host: "127.0.0.2", Port: 9}}})
	addr.Set(naming.Addr{State: naming.AddrPending})
	addr.Set(naming.Addr{State: naming.AddrNeg})
	addr.Set(naming.Addr{State: naming.AddrFailed, Err: errors.New("boom")})
	if len(got) != 6 {
		t.Fatalf("%d updates; want 6: %+v", len(got), got)
	}
	if h := hosts(got[1].Addrs); got[1].State != naming.AddrBound || strings.Join(h, ",") != "127.0.0.1:8" {
		t.Errorf("update 1 = %v %v; want just 127.0.0.1:8", got[1].State, h)
	}
	if got[2].State != naming.AddrBound || len(got[2].Addrs) != 0 {
		t.Errorf("update 2 = %+v; want a bound, empty set (no address on the host)", got[2])
	}
	if got[3].State != naming.AddrPending || got[4].State != naming.AddrNeg || got[5].State != naming.AddrFailed || got[5].Err == nil {
		t.Errorf("states = %v %v %v; want pending, neg, failed passed through", got[3].State, got[4].State, got[5].State)
	}
}

func TestSpecificHostIPv6(t *testing.T) {
	addr := watch.Const[naming.Addr]{V: naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{
		{Host: "::1", Port: 1}, {Host: "127.0.0.1", Port: 2}, {Host: "fe80::1", Port: 3},
	}}}
	out := load(t, "t: {kind: io.l5d.specificHost, host: '0:0::1'}").Transform(dtab.LeafTree(&naming.Bound{ID: dtab.Path{"x"}, Addr: addr}))
	if got := hosts(out.Value.Addr.Get().Addrs); strings.Join(got, ",") != "[::1]:1" {
		t.Errorf("addresses = %v; want only [::1]:1", got)
	}
}

// A host name is resolved once at startup; every address it has counts.
func TestSpecificHostName(t *testing.T) {
	c := &SpecificHostConfig{Host: "svc.example", lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
		if host != "svc.example" {
			t.Errorf("looked up %q", host)
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::ffff:127.0.0.3")}, nil
	}}
	tr, err := c.NewTransformer(naming.Env{Ctx: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	addr := watch.Const[naming.Addr]{V: naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{
		{Host: "127.0.0.1", Port: 1}, {Host: "127.0.0.2", Port: 2}, {Host: "127.0.0.3", Port: 3},
	}}}
	out := tr.Transform(dtab.LeafTree(&naming.Bound{ID: dtab.Path{"x"}, Addr: addr}))
	if got := hosts(out.Value.Addr.Get().Addrs); strings.Join(got, ",") != "127.0.0.2:2,127.0.0.3:3" {
		t.Errorf("addresses = %v; want the name's two addresses", got)
	}

	// The real resolver, on a name /etc/hosts answers (no DNS traffic).
	out = load(t, "t: {kind: io.l5d.specificHost, host: localhost}").Transform(dtab.LeafTree(&naming.Bound{ID: dtab.Path{"x"}, Addr: addr}))
	if got := hosts(out.Value.Addr.Get().Addrs); len(got) != 1 || got[0] != "127.0.0.1:1" {
		t.Errorf("host localhost: addresses = %v; want 127.0.0.1:1", got)
	}
}

func TestSpecificHostUnresolvable(t *testing.T) {
	for name, lookup := range map[string]func(context.Context, string) ([]netip.Addr, error){
		"not found": func(context.Context, string) ([]netip.Addr, error) {
			return nil, &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}
		},
		"no addresses": func(context.Context, string) ([]netip.Addr, error) { return nil, nil },
	} {
		c := &SpecificHostConfig{Host: "nowhere.invalid", lookup: lookup}
		_, err := c.NewTransformer(naming.Env{Ctx: context.Background()})
		if err == nil || !strings.Contains(err.Error(), `host "nowhere.invalid" does not resolve`) || !strings.Contains(err.Error(), "io.l5d.specificHost") {
			t.Errorf("%s: error = %v; want one naming the kind, the field and the value", name, err)
		}
	}
}

func TestSpecificHostConfigErrors(t *testing.T) {
	for yaml, want := range map[string]string{
		"t: {kind: io.l5d.specificHost}":                    "missing required key `host`",
		"t: {kind: io.l5d.specificHost, host: ''}":          "t.host: must not be empty",
		"t: {kind: io.l5d.specificHost, host: 'a b'}":       `t.host: must be an IP address or a host name, got "a b"`,
		"t: {kind: io.l5d.specificHost, host: h, port: 80}": "port",
		"t: {kind: io.l5d.specificHost, host: [127.0.0.1]}": "t.host",
		"t: {kind: io.l5d.specificHost, host: 10.0.0.1/24}": `got "10.0.0.1/24"`,
	} {
		err := loadErr(yaml)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error = %v; want it to mention %q", yaml, err, want)
		}
	}
}
