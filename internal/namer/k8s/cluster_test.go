package k8s

// Tests against a real kube-apiserver (internal/k8s/k8stest). No controllers
// run there, so the tests write Services and EndpointSlices (or Endpoints)
// themselves, as the endpoint controllers would. Addresses are 10.x: the
// API refuses loopback ones, and these tests never connect to them.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	typeddiscoveryv1 "k8s.io/client-go/kubernetes/typed/discovery/v1"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/k8s/k8stest"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }

const waitFor = 15 * time.Second

// api writes Kubernetes objects for a test, in its own namespace.
type api struct {
	t    *testing.T
	srv  *k8stest.Server
	ns   string
	core typedcorev1.CoreV1Interface
	disc typeddiscoveryv1.DiscoveryV1Interface
	ctx  context.Context
}

var nsSeq atomic.Int64

func newAPI(t *testing.T) *api {
	t.Helper()
	srv := k8stest.Shared(t)
	cfg, err := srv.Conn().RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	a := &api{t: t, srv: srv, ns: fmt.Sprintf("t%d-%d", os.Getpid(), nsSeq.Add(1))}
	if a.core, err = typedcorev1.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if a.disc, err = typeddiscoveryv1.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	a.ctx = ctx
	if _, err := a.core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return a
}

// service creates or replaces Service name with the given ports
// ("name:port:targetPort", targetPort a number or a name).
func (a *api) service(name string, labels map[string]string, ports ...string) {
	a.t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.ns, Labels: labels}}
	for _, p := range ports {
		f := strings.Split(p, ":")
		var num int32
		fmt.Sscan(f[1], &num)
		sp := corev1.ServicePort{Name: f[0], Port: num, Protocol: corev1.ProtocolTCP, TargetPort: intstr.Parse(f[2])}
		svc.Spec.Ports = append(svc.Spec.Ports, sp)
	}
	old, err := a.core.Services(a.ns).Get(a.ctx, name, metav1.GetOptions{})
	if err == nil {
		svc.ResourceVersion = old.ResourceVersion
		svc.Spec.ClusterIP = old.Spec.ClusterIP
		_, err = a.core.Services(a.ns).Update(a.ctx, svc, metav1.UpdateOptions{})
	} else {
		_, err = a.core.Services(a.ns).Create(a.ctx, svc, metav1.CreateOptions{})
	}
	if err != nil {
		a.t.Fatalf("service %s: %v", name, err)
	}
}

// ep is one endpoint: "10.1.0.1@node-a" ready, "!10.1.0.1@node-a" not ready.
func endpoints(eps ...string) []discoveryv1.Endpoint {
	var out []discoveryv1.Endpoint
	for _, e := range eps {
		ready := !strings.HasPrefix(e, "!")
		ip, node, _ := strings.Cut(strings.TrimPrefix(e, "!"), "@")
		ep := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
		if node != "" {
			ep.NodeName = &node
		}
		out = append(out, ep)
	}
	return out
}

// slice creates or replaces EndpointSlice name of service svc with ports
// ("name:number,name:number") and endpoints.
func (a *api) slice(name, svc string, labels map[string]string, port string, eps ...string) {
	a.t.Helper()
	proto := corev1.ProtocolTCP
	var ports []discoveryv1.EndpointPort
	for _, p := range strings.Split(port, ",") {
		pn, pnum, _ := strings.Cut(p, ":")
		var num int32
		fmt.Sscan(pnum, &num)
		ports = append(ports, discoveryv1.EndpointPort{Name: &pn, Port: &num, Protocol: &proto})
	}
	l := map[string]string{discoveryv1.LabelServiceName: svc}
	for k, v := range labels {
		l[k] = v
	}
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: a.ns, Labels: l},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   endpoints(eps...),
		Ports:       ports,
	}
	old, err := a.disc.EndpointSlices(a.ns).Get(a.ctx, name, metav1.GetOptions{})
	if err == nil {
		s.ResourceVersion = old.ResourceVersion
		_, err = a.disc.EndpointSlices(a.ns).Update(a.ctx, s, metav1.UpdateOptions{})
	} else {
		_, err = a.disc.EndpointSlices(a.ns).Create(a.ctx, s, metav1.CreateOptions{})
	}
	if err != nil {
		a.t.Fatalf("endpointslice %s: %v", name, err)
	}
}

func (a *api) deleteService(name string, slices ...string) {
	a.t.Helper()
	if err := a.core.Services(a.ns).Delete(a.ctx, name, metav1.DeleteOptions{}); err != nil {
		a.t.Fatal(err)
	}
	for _, s := range slices {
		if err := a.disc.EndpointSlices(a.ns).Delete(a.ctx, s, metav1.DeleteOptions{}); err != nil {
			a.t.Fatal(err)
		}
	}
}

// namer builds a namer from YAML (a `namers:` entry), with ctx ending at
// the end of the test.
func namerFromYAML(t *testing.T, text string) *Namer {
	t.Helper()
	var c struct {
		Namers []config.Kinded[naming.NamerConfig] `yaml:"namers"`
	}
	if err := config.Load([]byte(text), &c); err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	n, err := c.Namers[0].Value.NewNamer(naming.Env{Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	return n.(*Namer)
}

func proxyYAML(t *testing.T, a *api, kind, extra string) string {
	c := a.srv.ProxyConn(t)
	return fmt.Sprintf("namers:\n- kind: %s\n  host: %s\n  port: %d\n%s", kind, c.Host, c.Port, extra)
}

// await waits until the latest value v publishes satisfies ok.
func await[T any](t *testing.T, what string, v watch.Value[T], ok func(T) bool) T {
	t.Helper()
	ch := make(chan T, 1024)
	cancel := v.Subscribe(func(x T) { ch <- x })
	defer cancel()
	deadline := time.After(waitFor)
	var last T
	for {
		select {
		case x := <-ch:
			last = x
			if ok(x) {
				return x
			}
		case <-deadline:
			t.Fatalf("%s: still %+v after %v", what, last, waitFor)
		}
	}
}

// treeIs reports whether a lookup answer is negative ("neg"), pending,
// or a bound leaf with the given id ("/#/...").
func treeIs(want string) func(watch.Activity[dtab.Tree[naming.Name]]) bool {
	return func(a watch.Activity[dtab.Tree[naming.Name]]) bool {
		switch {
		case a.State == watch.Pending:
			return want == "pending"
		case a.State != watch.Ok:
			return false
		case a.Value.Kind == dtab.Neg:
			return want == "neg"
		case a.Value.Kind == dtab.Leaf && a.Value.Value.Bound != nil:
			return a.Value.Value.Bound.ID.String() == want
		}
		return false
	}
}

func addrIs(want string) func(naming.Addr) bool {
	return func(a naming.Addr) bool { return showAddr(a) == want }
}

func leafBound(t *testing.T, a watch.Activity[dtab.Tree[naming.Name]]) *naming.Bound {
	t.Helper()
	if a.State != watch.Ok || a.Value.Kind != dtab.Leaf || a.Value.Value.Bound == nil {
		t.Fatalf("not a bound leaf: %+v", a)
	}
	return a.Value.Value.Bound
}

// TestNamerFollowsChanges drives one Service through its life and checks
// that the namer's answers follow each change. It uses Linkerd's default
// connection mode: plain HTTP to a kubectl proxy.
func TestNamerFollowsChanges(t *testing.T) {
	a := newAPI(t)
	n := namerFromYAML(t, proxyYAML(t, a, "io.l5d.k8s", ""))
	ns := a.ns

	byName := n.Lookup(dtab.Path{ns, "http", "world", "residual"})
	// Held for the whole test, so that every change below reaches a live
	// entry and is counted (an entry nobody watches is dropped).
	defer byName.Subscribe(func(watch.Activity[dtab.Tree[naming.Name]]) {})()
	await(t, "before the service exists", byName, treeIs("neg"))

	a.service("world", nil, "http:80:http")
	a.slice("world-1", "world", nil, "http:7777", "10.1.0.1@node-a", "10.1.0.2@node-b")
	id := "/#/io.l5d.k8s/" + ns + "/http/world"
	tree := await(t, "created", byName, treeIs(id))
	b := leafBound(t, tree)
	if b.Residual.String() != "/residual" {
		t.Errorf("residual %s", b.Residual)
	}
	await(t, "created", b.Addr, addrIs("bound[10.1.0.1:7777@node-a 10.1.0.2:7777@node-b]"))

	a.slice("world-1", "world", nil, "http:7777", "10.1.0.1@node-a", "10.1.0.2@node-b", "10.1.0.3@node-c")
	await(t, "scaled up", b.Addr, addrIs("bound[10.1.0.1:7777@node-a 10.1.0.2:7777@node-b 10.1.0.3:7777@node-c]"))

	a.slice("world-1", "world", nil, "http:7777", "10.1.0.3@node-c")
	await(t, "scaled down", b.Addr, addrIs("bound[10.1.0.3:7777@node-c]"))

	a.slice("world-1", "world", nil, "http:7777", "10.1.0.3@node-c", "!10.1.0.4@node-d")
	a.slice("world-2", "world", nil, "http:7777", "10.1.1.1@node-e")
	await(t, "a second slice, one endpoint not ready", b.Addr, addrIs("bound[10.1.0.3:7777@node-c 10.1.1.1:7777@node-e]"))

	a.slice("world-1", "world", nil, "http:7777", "!10.1.0.3@node-c", "!10.1.0.4@node-d")
	a.slice("world-2", "world", nil, "http:7777", "!10.1.1.1@node-e")
	await(t, "no pod ready: bound, empty", b.Addr, addrIs("bound[]"))
	if got := byName.Get(); !treeIs(id)(got) {
		t.Errorf("with no ready pod the name must stay bound, got %+v", got)
	}

	// By Service port number, mapped through the named targetPort.
	byNumber := n.Lookup(dtab.Path{ns, "80", "world"})
	a.slice("world-1", "world", nil, "http:7777", "10.1.0.5@node-a")
	bn := leafBound(t, await(t, "by number", byNumber, treeIs("/#/io.l5d.k8s/"+ns+"/80/world")))
	await(t, "by number", bn.Addr, addrIs("bound[10.1.0.5:7777@node-a]"))
	await(t, "by name again", b.Addr, addrIs("bound[10.1.0.5:7777@node-a]"))

	// The port is renamed: the old name goes negative, the new one binds.
	byNewName := n.Lookup(dtab.Path{ns, "web", "world"})
	a.service("world", nil, "web:80:web")
	a.slice("world-1", "world", nil, "web:7777", "10.1.0.5@node-a")
	a.slice("world-2", "world", nil, "web:7777", "10.1.1.2@node-e")
	await(t, "renamed: old name", byName, treeIs("neg"))
	nb := leafBound(t, await(t, "renamed: new name", byNewName, treeIs("/#/io.l5d.k8s/"+ns+"/web/world")))
	await(t, "renamed: new name", nb.Addr, addrIs("bound[10.1.0.5:7777@node-a 10.1.1.2:7777@node-e]"))
	await(t, "renamed: number follows targetPort", bn.Addr, addrIs("bound[10.1.0.5:7777@node-a 10.1.1.2:7777@node-e]"))

	// Deleted, then re-created with other pods.
	a.deleteService("world", "world-1", "world-2")
	await(t, "deleted", byNewName, treeIs("neg"))
	await(t, "deleted (number)", byNumber, treeIs("neg"))
	a.service("world", nil, "web:80:8080")
	a.slice("world-x", "world", nil, "web:8080", "10.1.2.1@node-f")
	nb = leafBound(t, await(t, "re-created", byNewName, treeIs("/#/io.l5d.k8s/"+ns+"/web/world")))
	await(t, "re-created", nb.Addr, addrIs("bound[10.1.2.1:8080@node-f]"))
	bn = leafBound(t, await(t, "re-created (numeric targetPort)", byNumber, treeIs("/#/io.l5d.k8s/"+ns+"/80/world")))
	await(t, "re-created (numeric targetPort)", bn.Addr, addrIs("bound[10.1.2.1:8080@node-f]"))

	if u := n.updates.Value(); u < 3 {
		t.Errorf("updates counter %d after a dozen published changes", u)
	}

	// Too short a path is negative at once.
	if got := n.Lookup(dtab.Path{ns, "web"}).Get(); !treeIs("neg")(got) {
		t.Errorf("short path: %+v", got)
	}
	// Case-insensitive segments.
	if got := n.Lookup(dtab.Path{strings.ToUpper(ns), "WEB", "World"}).Get(); !treeIs("/#/io.l5d.k8s/" + ns + "/web/world")(got) {
		t.Errorf("upper case: %+v", got)
	}
}

// TestSharedInformers: however many namers and names, one list+watch per
// resource on one API endpoint.
func TestSharedInformers(t *testing.T) {
	a := newAPI(t)
	// client-go first tries a streaming list (a watch with
	// sendInitialEvents) and, where that is not available, lists and then
	// watches: one informer makes at most 2 watch requests and 1 list.
	count := func(resource, kind string) int { return len(a.srv.ProxyRequests(resource + "?" + kind)) }
	watchesBefore, listsBefore := count("endpointslices", "allowWatchBookmarks=true"), count("endpointslices", "limit=")
	servicesBefore := count("services", "allowWatchBookmarks=true")
	n1 := namerFromYAML(t, proxyYAML(t, a, "io.l5d.k8s", ""))
	n2 := namerFromYAML(t, proxyYAML(t, a, "io.l5d.k8s", "  prefix: /io.l5d.k8s.other\n"))
	if n1.cluster != n2.cluster {
		t.Fatal("two namers on one API endpoint do not share their cluster")
	}
	for i := range 20 {
		svc := fmt.Sprintf("svc-%d", i)
		a.service(svc, nil, "http:80:http")
		a.slice(svc, svc, nil, "http:8080", fmt.Sprintf("10.3.0.%d@n", i+1))
	}
	var cancels []func()
	for i := range 20 {
		for _, n := range []*Namer{n1, n2} {
			v := n.Lookup(dtab.Path{a.ns, "http", fmt.Sprintf("svc-%d", i)})
			b := leafBound(t, await(t, "bound", v, treeIs(n.prefix.String()+"/"+a.ns+fmt.Sprintf("/http/svc-%d", i))))
			cancels = append(cancels, b.Addr.Subscribe(func(naming.Addr) {}))
		}
	}
	if got := n2.Lookup(dtab.Path{a.ns, "http", "svc-3"}).Get(); !treeIs("/#/io.l5d.k8s.other/" + a.ns + "/http/svc-3")(got) {
		t.Errorf("prefix: %+v", got)
	}
	if w, l := count("endpointslices", "allowWatchBookmarks=true")-watchesBefore, count("endpointslices", "limit=")-listsBefore; w < 1 || w > 2 || l > 1 {
		t.Errorf("%d EndpointSlice watches and %d lists for 40 watched names, want one informer: %v", w, l, a.srv.ProxyRequests("endpointslices"))
	}
	if w := count("services", "allowWatchBookmarks=true") - servicesBefore; w < 1 || w > 2 {
		t.Errorf("%d Service watches for 40 watched names, want one informer", w)
	}
	n1.mu.Lock()
	entries := len(n1.entries)
	n1.mu.Unlock()
	if entries != 20 {
		t.Errorf("%d watched names, want 20", entries)
	}
	for _, c := range cancels {
		c()
	}
	n1.mu.Lock()
	entries = len(n1.entries)
	n1.mu.Unlock()
	if entries != 0 {
		t.Errorf("%d names still held after every cancel", entries)
	}
}

// TestEndpointsAPI reads v1 Endpoints (clusters without EndpointSlices)
// through a kubeconfig with token authentication.
func TestEndpointsAPI(t *testing.T) {
	a := newAPI(t)
	n := namerFromYAML(t, fmt.Sprintf("namers:\n- kind: io.l5d.k8s\n  kubeconfig: %s\n  endpointsApi: endpoints\n", a.srv.Kubeconfig))
	if n.cluster.UsesEndpointSlices() {
		t.Fatal("endpointsApi: endpoints still reads slices")
	}
	v := n.Lookup(dtab.Path{a.ns, "http", "legacy"})
	await(t, "absent", v, treeIs("neg"))
	e := legacyEndpoints(a.ns)
	if _, err := a.core.Endpoints(a.ns).Create(a.ctx, e, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := leafBound(t, await(t, "created", v, treeIs("/#/io.l5d.k8s/"+a.ns+"/http/legacy")))
	await(t, "created", b.Addr, addrIs("bound[10.4.0.1:9000@node-a]"))
	e.Subsets = nil
	if _, err := a.core.Endpoints(a.ns).Update(a.ctx, e, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	await(t, "no subsets", v, treeIs("neg"))
}

func TestLabelSelectorAndNSNamer(t *testing.T) {
	a := newAPI(t)
	n := namerFromYAML(t, proxyYAML(t, a, "io.l5d.k8s", "  labelSelector: version\n"))
	a.service("world", map[string]string{"version": "v1"}, "http:80:http")
	a.slice("world", "world", map[string]string{"version": "v1"}, "http:7777", "10.5.0.1")
	v1 := n.Lookup(dtab.Path{a.ns, "http", "world", "v1"})
	b := leafBound(t, await(t, "v1", v1, treeIs("/#/io.l5d.k8s/"+a.ns+"/http/world/v1")))
	await(t, "v1", b.Addr, addrIs("bound[10.5.0.1:7777]"))
	await(t, "v2", n.Lookup(dtab.Path{a.ns, "http", "world", "v2"}), treeIs("neg"))
	if got := n.Lookup(dtab.Path{a.ns, "http", "world"}).Get(); !treeIs("neg")(got) {
		t.Errorf("missing label segment: %+v", got)
	}

	var c struct {
		Namers []config.Kinded[naming.NamerConfig] `yaml:"namers"`
	}
	if err := config.Load([]byte(proxyYAML(t, a, "io.l5d.k8s.ns", "  envVar: MY_NS\n")), &c); err != nil {
		t.Fatal(err)
	}
	nc := c.Namers[0].Value.(*NSConfig)
	nc.getenv = func(k string) string {
		if k == "MY_NS" {
			return a.ns
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nn, err := nc.NewNamer(naming.Env{Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	b = leafBound(t, await(t, "ns namer", nn.Lookup(dtab.Path{"http", "world"}), treeIs("/#/io.l5d.k8s.ns/http/world")))
	await(t, "ns namer", b.Addr, addrIs("bound[10.5.0.1:7777]"))
	nc.getenv = func(string) string { return "" }
	if _, err := nc.NewNamer(naming.Env{Ctx: ctx}); err == nil || !strings.Contains(err.Error(), "MY_NS") {
		t.Errorf("unset env: %v", err)
	}
}

func TestExternalNamer(t *testing.T) {
	a := newAPI(t)
	if err := config.Load([]byte(proxyYAML(t, a, "io.l5d.k8s.external", "")), &struct {
		Namers []config.Kinded[naming.NamerConfig] `yaml:"namers"`
	}{}); err == nil || !strings.Contains(err.Error(), "experimental") {
		t.Errorf("without experimental: %v", err)
	}
	n := namerFromYAML(t, proxyYAML(t, a, "io.l5d.k8s.external", "  experimental: true\n"))
	v := n.Lookup(dtab.Path{a.ns, "http", "edge"})
	await(t, "absent", v, treeIs("neg"))
	edge := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "edge", Namespace: a.ns}, Spec: corev1.ServiceSpec{
		Type:  corev1.ServiceTypeLoadBalancer,
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
	}}
	if _, err := a.core.Services(a.ns).Create(a.ctx, edge, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := leafBound(t, await(t, "no load balancer yet", v, treeIs("/#/io.l5d.k8s.external/"+a.ns+"/http/edge")))
	await(t, "no load balancer yet", b.Addr, addrIs("bound[]"))
	svc, err := a.core.Services(a.ns).Get(a.ctx, "edge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.10"}}
	if _, err := a.core.Services(a.ns).UpdateStatus(a.ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	await(t, "load balancer", b.Addr, addrIs("bound[203.0.113.10:80]"))
}

// TestDtabFallback: a negative answer falls through a dtab alternative, and
// traffic's bound name switches when the preferred service appears.
func TestDtabFallback(t *testing.T) {
	a := newAPI(t)
	n := namerFromYAML(t, proxyYAML(t, a, "io.l5d.k8s", ""))
	a.service("world-v1", nil, "http:80:http")
	a.slice("world-v1", "world-v1", nil, "http:7777", "10.6.0.1")
	in := naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "io.l5d.k8s"}, Namer: n}})
	d := dtab.MustParse(fmt.Sprintf("/srv=>/#/io.l5d.k8s/%s/http;/svc/world=>/srv/world-v2|/srv/world-v1", a.ns))
	binding := in.Bind(d, dtab.Path{"svc", "world"})
	boundTo := func(id string) func(watch.Activity[naming.BoundTree]) bool {
		return func(x watch.Activity[naming.BoundTree]) bool {
			leaves, ok := dtab.Eval(x.Value)
			return x.State == watch.Ok && ok && len(leaves) == 1 && leaves[0].ID.String() == id
		}
	}
	await(t, "fallback", binding, boundTo("/#/io.l5d.k8s/"+a.ns+"/http/world-v1"))
	a.service("world-v2", nil, "http:80:http")
	a.slice("world-v2", "world-v2", nil, "http:7777", "10.6.1.1")
	await(t, "preferred appears", binding, boundTo("/#/io.l5d.k8s/"+a.ns+"/http/world-v2"))
	a.deleteService("world-v2", "world-v2")
	await(t, "preferred gone", binding, boundTo("/#/io.l5d.k8s/"+a.ns+"/http/world-v1"))
}
