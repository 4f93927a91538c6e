package k8s

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

type namersDoc struct {
	Namers []config.Kinded[naming.NamerConfig] `yaml:"namers"`
}

type transformersDoc struct {
	Transformers []config.Kinded[naming.TransformerConfig] `yaml:"transformers"`
}

func TestConfigDefaults(t *testing.T) {
	var d namersDoc
	if err := config.Load([]byte("namers:\n- kind: io.l5d.k8s\n- kind: io.l5d.k8s.ns\n  prefix: /k8s-local\n"), &d); err != nil {
		t.Fatal(err)
	}
	c := d.Namers[0].Value.(*Config)
	if c.Host != "localhost" || c.Port != 8001 || c.InCluster || c.Kubeconfig != "" {
		t.Errorf("defaults: %+v", c)
	}
	ns := d.Namers[1].Value.(*NSConfig)
	if ns.EnvVar != "POD_NAMESPACE" || ns.Port != 8001 {
		t.Errorf("ns defaults: %+v", ns)
	}
	// Building needs no API server: informers start on the first lookup.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns.getenv = func(string) string { return "Prod" }
	n, err := ns.NewNamer(naming.Env{Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	nn := n.(*Namer)
	if nn.prefix.String() != "/#/k8s-local" || nn.ns != "prod" {
		t.Errorf("prefix %s ns %s", nn.prefix, nn.ns)
	}
	if got := nn.Lookup(dtab.Path{"http"}).Get(); !treeIs("neg")(got) {
		t.Errorf("short path: %+v", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"namers:\n- kind: io.l5d.k8s\n  port: 0\n", "namers[0].port: 0 is not a port"},
		{"namers:\n- kind: io.l5d.k8s\n  host: ''\n", "namers[0].host: must not be empty"},
		{"namers:\n- kind: io.l5d.k8s\n  labelSelector: version=v1\n", "must be a label key"},
		{"namers:\n- kind: io.l5d.k8s\n  inCluster: true\n  kubeconfig: /x\n", "mutually exclusive"},
		{"namers:\n- kind: io.l5d.k8s\n  endpointsApi: both\n", `"both" is not endpointslices or endpoints`},
		{"namers:\n- kind: io.l5d.k8s\n  hots: localhost\n", "hots"},
		{"namers:\n- kind: io.l5d.k8s.external\n", "requires experimental: true"},
		{"namers:\n- kind: io.l5d.k8s.ns\n  envVar: ''\n", "envVar: must not be empty"},
	} {
		var d namersDoc
		err := config.Load([]byte(tc.text), &d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
	for _, tc := range []struct{ text, want string }{
		{"transformers:\n- kind: io.l5d.k8s.daemonset\n  port: incoming\n  service: l5d\n", "namespace: is required"},
		{"transformers:\n- kind: io.l5d.k8s.daemonset\n  namespace: default\n  service: l5d\n", "port: is required"},
		{"transformers:\n- kind: io.l5d.k8s.daemonset\n  namespace: default\n  port: incoming\n", "service: is required"},
		{"transformers:\n- kind: io.l5d.k8s.daemonset\n  namespace: default\n  port: incoming\n  service: l5d\n  k8sPort: 70000\n", "70000 is not a port"},
		{"transformers:\n- kind: io.l5d.k8s.localnode\n  hostNetwork: yes please\n", "hostNetwork"},
	} {
		var d transformersDoc
		err := config.Load([]byte(tc.text), &d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
}

func TestDaemonSetMarker(t *testing.T) {
	var d transformersDoc
	if err := config.Load([]byte("transformers:\n- kind: io.l5d.k8s.daemonset\n  namespace: default\n  port: incoming\n  service: l5d\n"), &d); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr, err := d.Transformers[0].Value.NewTransformer(naming.Env{Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	ds := tr.(*DaemonSetTransformer)
	if got := ds.marker.String(); got != "/%/io.l5d.k8s.daemonset/default/incoming/l5d" {
		t.Errorf("marker %s", got)
	}
	// The same input bound name gives the same output bound name.
	in := &naming.Bound{ID: dtab.Path{"#", "io.l5d.k8s", "default", "http", "world"}}
	t1 := tr.Transform(dtab.LeafTree(in))
	t2 := tr.Transform(dtab.AltTree(dtab.NegTree[*naming.Bound](), dtab.LeafTree(in)))
	if t1.Value != t2.Alts[1].Value || t1.Value.ID.String() != "/%/io.l5d.k8s.daemonset/default/incoming/l5d/#/io.l5d.k8s/default/http/world" {
		t.Errorf("transformed: %v vs %v", t1.Value, t2.Alts[1].Value)
	}
	if ds.cache.size() != 1 {
		t.Errorf("cache size %d", ds.cache.size())
	}
}

// TestUnreachableAPI: with no API server, lookups fail with the reason
// instead of staying pending.
func TestUnreachableAPI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	var d namersDoc
	if err := config.Load(fmt.Appendf(nil, "namers:\n- kind: io.l5d.k8s\n  host: 127.0.0.1\n  port: %d\n", port), &d); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := d.Namers[0].Value.NewNamer(naming.Env{Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	got := await(t, "unreachable", n.Lookup(dtab.Path{"default", "http", "world"}), func(a watch.Activity[dtab.Tree[naming.Name]]) bool {
		return a.State == watch.Failed
	})
	if msg := got.Err.Error(); !strings.Contains(msg, fmt.Sprintf("127.0.0.1:%d", port)) || !strings.Contains(msg, "refused") {
		t.Errorf("error %q does not say what failed", msg)
	}
}
