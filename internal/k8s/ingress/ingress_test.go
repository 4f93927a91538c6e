package ingress

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	typeddiscoveryv1 "k8s.io/client-go/kubernetes/typed/discovery/v1"
	typednetworkingv1 "k8s.io/client-go/kubernetes/typed/networking/v1"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/k8s/k8stest"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/watch"

	_ "github.com/linnet-mesh/linnet/internal/namer/k8s" // io.l5d.k8s
)

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }

type api struct {
	t    *testing.T
	srv  *k8stest.Server
	ns   string
	core typedcorev1.CoreV1Interface
	disc typeddiscoveryv1.DiscoveryV1Interface
	net  typednetworkingv1.NetworkingV1Interface
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
	a := &api{t: t, srv: srv, ns: fmt.Sprintf("ing%d-%d", os.Getpid(), nsSeq.Add(1))}
	a.core, _ = typedcorev1.NewForConfig(cfg)
	a.disc, _ = typeddiscoveryv1.NewForConfig(cfg)
	a.net, _ = typednetworkingv1.NewForConfig(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	a.ctx = ctx
	if _, err := a.core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return a
}

// backend creates Service name (port http) with one ready endpoint.
func (a *api) backend(name, ip string, port int32) {
	a.t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.ns}, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}}}}
	if _, err := a.core.Services(a.ns).Create(a.ctx, svc, metav1.CreateOptions{}); err != nil {
		a.t.Fatal(err)
	}
	pn, proto, ready := "http", corev1.ProtocolTCP, true
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: a.ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &pn, Port: &port, Protocol: &proto}},
	}
	if _, err := a.disc.EndpointSlices(a.ns).Create(a.ctx, s, metav1.CreateOptions{}); err != nil {
		a.t.Fatal(err)
	}
}

func svcBackend(name, port string) *networkingv1.IngressBackend {
	b := &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name}}
	if n := intstr.Parse(port); n.Type == intstr.Int {
		b.Service.Port.Number = n.IntVal
	} else {
		b.Service.Port.Name = port
	}
	return b
}

func (a *api) ingress(ing *networkingv1.Ingress) {
	a.t.Helper()
	ing.Namespace = a.ns
	if _, err := a.net.Ingresses(a.ns).Create(a.ctx, ing, metav1.CreateOptions{}); err != nil {
		a.t.Fatal(err)
	}
}

func identifierFromYAML(t *testing.T, a *api, extra string) proxy.Identifier {
	t.Helper()
	c := a.srv.ProxyConn(t)
	text := fmt.Sprintf("identifier:\n  kind: io.l5d.ingress\n  namespace: %s\n  host: %s\n  port: %d\n%s", a.ns, c.Host, c.Port, extra)
	var cfg struct {
		Identifier config.Kinded[proxy.IdentifierConfig] `yaml:"identifier"`
	}
	if err := config.Load([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	id, err := cfg.Identifier.Value.NewIdentifier(proxy.IdentifierEnv{Ctx: ctx, DstPrefix: dtab.Path{"svc"}, Label: "ingress"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// identify waits until a request to host+path is named want ("" for
// unidentified).
func identify(t *testing.T, id proxy.Identifier, host, path, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := httptest.NewRequest("GET", "http://"+host+path, nil)
		p, err := id.Identify(r)
		got := ""
		if err == nil {
			got = p.String()
		} else {
			var ue *proxy.UnidentifiedError
			if !errors.As(err, &ue) {
				t.Fatalf("%s%s: error %v is not an UnidentifiedError", host, path, err)
			}
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%s: named %q (err %v), want %q", host, path, got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIngressWalkthrough is the walkthrough's ingress controller
// (linkerd-ingress-controller.yml with hello-world-ingress.yml, ported to
// networking.k8s.io/v1) on a real API server: the identifier names the
// request after the Ingress, and the router dtab /svc => /#/io.l5d.k8s binds
// it to the backend's endpoints.
func TestIngressWalkthrough(t *testing.T) {
	a := newAPI(t)
	a.backend("hello", "10.7.0.1", 7777)
	a.backend("world-v1", "10.7.0.2", 7778)
	a.backend("world-v2", "10.7.0.3", 7779)
	id := identifierFromYAML(t, a, "")
	svc := "/svc/" + a.ns
	identify(t, id, "www.hello.world", "/", "")

	a.ingress(&networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-world", Annotations: map[string]string{"kubernetes.io/ingress.class": "linkerd"}},
		Spec: networkingv1.IngressSpec{
			DefaultBackend: svcBackend("world-v1", "http"),
			Rules: []networkingv1.IngressRule{
				{Host: "world.v2", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr(networkingv1.PathTypePrefix), Backend: *svcBackend("world-v2", "http")}}}}},
				{Host: "www.hello.world", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{
						{Path: "/api/v[0-9]+", PathType: ptr(networkingv1.PathTypeImplementationSpecific), Backend: *svcBackend("world-v2", "80")},
						{Path: "/", PathType: ptr(networkingv1.PathTypePrefix), Backend: *svcBackend("hello", "http")},
					}}}},
			},
		},
	})
	// Another controller's ingress, by annotation and by class name: ignored.
	a.ingress(&networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx", Annotations: map[string]string{"kubernetes.io/ingress.class": "nginx"}},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "nginx.only", IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr(networkingv1.PathTypePrefix), Backend: *svcBackend("hello", "http")}}}}}}},
	})
	a.ingress(&networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "traefik"},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr("traefik"), Rules: []networkingv1.IngressRule{{Host: "traefik.only", IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr(networkingv1.PathTypePrefix), Backend: *svcBackend("hello", "http")}}}}}}},
	})

	identify(t, id, "www.hello.world", "/", svc+"/http/hello")
	identify(t, id, "www.hello.world:80", "/some/page", svc+"/http/hello")
	identify(t, id, "www.hello.world", "/api/v2", svc+"/80/world-v2")
	identify(t, id, "www.hello.world", "/api/v2/x", svc+"/http/hello") // regexp must match the whole path
	identify(t, id, "world.v2", "/", svc+"/http/world-v2")
	identify(t, id, "nginx.only", "/", svc+"/http/world-v1")   // default backend
	identify(t, id, "traefik.only", "/", svc+"/http/world-v1") // default backend

	// The router: /svc => /#/io.l5d.k8s binds the name to the endpoints.
	c := a.srv.ProxyConn(t)
	var cfg struct {
		Namers []config.Kinded[naming.NamerConfig] `yaml:"namers"`
	}
	if err := config.Load(fmt.Appendf(nil, "namers:\n- kind: io.l5d.k8s\n  host: %s\n  port: %d\n", c.Host, c.Port), &cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := cfg.Namers[0].Value.NewNamer(naming.Env{Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	in := naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "io.l5d.k8s"}, Namer: n}})
	for host, want := range map[string]string{"www.hello.world": "10.7.0.1:7777", "world.v2": "10.7.0.3:7779", "elsewhere": "10.7.0.2:7778"} {
		p, err := id.Identify(httptest.NewRequest("GET", "http://"+host+"/", nil))
		if err != nil {
			t.Fatal(err)
		}
		b := in.Bind(dtab.MustParse("/svc=>/#/io.l5d.k8s"), p)
		got := awaitAddr(t, b)
		if got != want {
			t.Errorf("%s → %s → %s, want %s", host, p, got, want)
		}
	}

	// ignoreDefaultBackends: unmatched requests are unidentified.
	strict := identifierFromYAML(t, a, "  ignoreDefaultBackends: true\n")
	identify(t, strict, "www.hello.world", "/", svc+"/http/hello")
	identify(t, strict, "elsewhere", "/", "")

	// Deleting the ingress removes its rules.
	if err := a.net.Ingresses(a.ns).Delete(a.ctx, "hello-world", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	identify(t, id, "www.hello.world", "/", "")
}

func awaitAddr(t *testing.T, b naming.Binding) string {
	t.Helper()
	ch := make(chan string, 64)
	var stopAddr func()
	stop := b.Subscribe(func(x watch.Activity[naming.BoundTree]) {
		leaves, ok := dtab.Eval(x.Value)
		if x.State != watch.Ok || !ok || len(leaves) != 1 {
			return
		}
		if stopAddr != nil {
			stopAddr()
		}
		stopAddr = leaves[0].Addr.Subscribe(func(a naming.Addr) {
			if a.State == naming.AddrBound && len(a.Addrs) == 1 {
				ch <- a.Addrs[0].HostPort()
			}
		})
	})
	defer func() {
		stop()
		if stopAddr != nil {
			stopAddr()
		}
	}()
	select {
	case s := <-ch:
		return s
	case <-time.After(15 * time.Second):
		t.Fatal("no address")
		return ""
	}
}

func TestIngressStatus(t *testing.T) {
	a := newAPI(t)
	a.ingress(&networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "ours"},
		Spec:       networkingv1.IngressSpec{DefaultBackend: svcBackend("hello", "http")},
	})
	a.ingress(&networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "theirs", Annotations: map[string]string{"kubernetes.io/ingress.class": "nginx"}},
		Spec:       networkingv1.IngressSpec{DefaultBackend: svcBackend("hello", "http")},
	})
	identifierFromYAML(t, a, "  statusAddress: 203.0.113.5, lb.example.com\n")
	deadline := time.Now().Add(15 * time.Second)
	for {
		ing, err := a.net.Ingresses(a.ns).Get(a.ctx, "ours", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		lb := ing.Status.LoadBalancer.Ingress
		if len(lb) == 2 && lb[0].IP == "203.0.113.5" && lb[1].Hostname == "lb.example.com" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of ours: %+v", lb)
		}
		time.Sleep(50 * time.Millisecond)
	}
	theirs, err := a.net.Ingresses(a.ns).Get(a.ctx, "theirs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(theirs.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("another controller's ingress got status %+v", theirs.Status.LoadBalancer.Ingress)
	}
}

func ptr[T any](v T) *T { return &v }
