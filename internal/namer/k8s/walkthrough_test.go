package k8s

import (
	"context"
	"fmt"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// router is the naming half of one router of the walkthrough's linkerd.yml
// (the namers and the interpreter with its transformers).
func router(t *testing.T, a *api, transformer string) naming.Interpreter {
	t.Helper()
	c := a.srv.ProxyConn(t)
	text := fmt.Sprintf(`namers:
- kind: io.l5d.k8s
  experimental: true
  host: %[1]s
  port: %[2]d
interpreter:
  kind: default
  transformers:
%[3]s`, c.Host, c.Port, transformer)
	var cfg struct {
		Namers      []config.Kinded[naming.NamerConfig]     `yaml:"namers"`
		Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
	}
	if err := config.Load([]byte(text), &cfg); err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	env := naming.Env{Ctx: ctx}
	n, err := cfg.Namers[0].Value.NewNamer(env)
	if err != nil {
		t.Fatal(err)
	}
	in, err := cfg.Interpreter.Value.NewInterpreter(naming.InterpreterEnv{Env: env, Label: "test",
		Namers: []naming.MountedNamer{{Prefix: dtab.Path{"#", "io.l5d.k8s"}, Namer: n}}})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// boundAs waits until binding yields one bound name with id and the given
// addresses, and returns the bound name.
func boundAs(t *testing.T, what string, b naming.Binding, id, addrs string) *naming.Bound {
	t.Helper()
	var got *naming.Bound
	await(t, what+": bound id", b, func(x watch.Activity[naming.BoundTree]) bool {
		leaves, ok := dtab.Eval(x.Value)
		if x.State != watch.Ok || !ok || len(leaves) != 1 || leaves[0].ID.String() != id {
			return false
		}
		got = leaves[0]
		return true
	})
	await(t, what+": addresses", got.Addr, addrIs(addrs))
	return got
}

// TestWalkthrough is the seed walkthrough's scenario on a real API server:
// hello, world-v1 and world-v2 Services, a router DaemonSet (Service l5d,
// ports outgoing/incoming/admin) on two nodes, and the two routers of
// linkerd.yml: "outgoing" sends every name to the router on the
// destination's node (io.l5d.k8s.daemonset), "incoming" delivers to the
// destination pods on its own node (io.l5d.k8s.localnode).
func TestWalkthrough(t *testing.T) {
	a := newAPI(t)
	ns := a.ns
	// Node a has pod CIDR 10.244.1.0/24, node b 10.244.2.0/24.
	a.service("l5d", nil, "outgoing:4140:4140", "incoming:4141:4141", "admin:9990:9990")
	a.slice("l5d", "l5d", nil, "outgoing:4140,incoming:4141,admin:9990", "10.244.1.10@node-a", "10.244.2.10@node-b")
	a.service("hello", nil, "http:7777:http")
	a.slice("hello", "hello", nil, "http:7777", "10.244.1.21@node-a", "10.244.2.21@node-b")
	a.service("world-v1", nil, "http:7778:http")
	a.slice("world-v1", "world-v1", nil, "http:7778", "10.244.2.31@node-b")
	a.service("world-v2", nil, "http:7779:http")
	a.slice("world-v2", "world-v2", nil, "http:7779", "10.244.1.41@node-a")

	c := a.srv.ProxyConn(t)
	outgoing := router(t, a, fmt.Sprintf(`  - kind: io.l5d.k8s.daemonset
    namespace: %s
    port: incoming
    service: l5d
    k8sHost: %s
    k8sPort: %d
`, ns, c.Host, c.Port))
	t.Setenv("POD_IP", "10.244.2.10") // the incoming router on node b
	incoming := router(t, a, "  - kind: io.l5d.k8s.localnode\n")

	routerDtab := dtab.MustParse(fmt.Sprintf(`/srv=>/#/io.l5d.k8s/%s/http;/host=>/srv;/svc=>/host;/host/world=>/srv/world-v1`, ns))
	ds := "/%/io.l5d.k8s.daemonset/" + ns + "/incoming/l5d/#/io.l5d.k8s/" + ns + "/http/"
	ln := "/%/io.l5d.k8s.localnode/10.244.2.10/#/io.l5d.k8s/" + ns + "/http/"

	// Outgoing: hello runs on both nodes, so both routers get traffic.
	boundAs(t, "outgoing hello", outgoing.Bind(routerDtab, dtab.Path{"svc", "hello"}), ds+"hello",
		"bound[10.244.1.10:4141@node-a 10.244.2.10:4141@node-b]")
	// /host/world => /srv/world-v1, which runs on node b only.
	world := outgoing.Bind(routerDtab, dtab.Path{"svc", "world"})
	boundAs(t, "outgoing world", world, ds+"world-v1", "bound[10.244.2.10:4141@node-b]")
	// The walkthrough's per-request override (l5d-dtab: /host/world => /srv/world-v2).
	override := append(append(dtab.Dtab{}, routerDtab...), dtab.MustParse("/host/world=>/srv/world-v2")...)
	boundAs(t, "outgoing world, overridden", outgoing.Bind(override, dtab.Path{"svc", "world"}), ds+"world-v2",
		"bound[10.244.1.10:4141@node-a]")

	// Incoming on node b: only the local pods.
	boundAs(t, "incoming hello", incoming.Bind(routerDtab, dtab.Path{"svc", "hello"}), ln+"hello", "bound[10.244.2.21:7777@node-b]")
	inWorld := boundAs(t, "incoming world", incoming.Bind(routerDtab, dtab.Path{"svc", "world"}), ln+"world-v1", "bound[10.244.2.31:7778@node-b]")

	// world-v1 scales onto node a: the outgoing router now uses both routers;
	// the incoming router on b still delivers locally only.
	a.slice("world-v1", "world-v1", nil, "http:7778", "10.244.2.31@node-b", "10.244.1.31@node-a")
	boundAs(t, "outgoing world, scaled", world, ds+"world-v1", "bound[10.244.1.10:4141@node-a 10.244.2.10:4141@node-b]")
	await(t, "incoming world, scaled", inWorld.Addr, addrIs("bound[10.244.2.31:7778@node-b]"))

	// The router on node b goes away: destinations only on b have no router.
	a.slice("l5d", "l5d", nil, "outgoing:4140,incoming:4141,admin:9990", "10.244.1.10@node-a")
	wb := boundAs(t, "outgoing world, router b gone", world, ds+"world-v1", "bound[10.244.1.10:4141@node-a]")
	a.slice("world-v1", "world-v1", nil, "http:7778", "10.244.2.31@node-b")
	await(t, "outgoing world, no router on its node", wb.Addr, addrIs("neg"))
}
