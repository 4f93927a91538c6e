package k8s

import (
	"fmt"
	"strings"
	"testing"

	kapi "github.com/linnet-mesh/linnet/internal/k8s"
	"github.com/linnet-mesh/linnet/internal/naming"
)

func show(r result) string {
	switch {
	case r.pending:
		return "pending"
	case !r.exists:
		return "neg"
	}
	var b strings.Builder
	b.WriteString("bound[")
	for i, a := range r.addrs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(a.HostPort())
		if n, ok := a.Meta[MetaNodeName]; ok {
			fmt.Fprintf(&b, "@%v", n)
		}
	}
	b.WriteString("]")
	return b.String()
}

func ready(ips ...string) []kapi.EndpointAddress {
	var out []kapi.EndpointAddress
	for _, ip := range ips {
		out = append(out, kapi.EndpointAddress{IP: ip, NodeName: "n-" + ip[strings.LastIndexByte(ip, '.')+1:]})
	}
	return out
}

func TestResolveEndpoints(t *testing.T) {
	svc := &kapi.Service{Namespace: "default", Name: "world", Labels: map[string]string{"version": "v1"}, Ports: []kapi.ServicePort{
		{Name: "http", Port: 80, Protocol: "TCP", TargetPortName: "http"},
		{Name: "admin", Port: 9990, Protocol: "TCP", TargetPortNumber: 9991},
		{Name: "dns", Port: 53, Protocol: "UDP", TargetPortNumber: 53},
	}}
	ep := kapi.Endpoints{Namespace: "default", Service: "world", Labels: map[string]string{"version": "v1"}, Groups: []kapi.EndpointGroup{
		{Ports: []kapi.EndpointPort{{Name: "http", Port: 7777, Protocol: "TCP"}, {Name: "admin", Port: 9991, Protocol: "TCP"}},
			Ready: ready("10.1.0.2", "10.1.0.1"), NotReady: ready("10.1.0.3")},
		{Ports: []kapi.EndpointPort{{Name: "HTTP", Port: 7778, Protocol: "TCP"}, {Name: "dns", Port: 53, Protocol: "UDP"}},
			Ready: ready("10.1.1.1")},
		// An endpoint listed twice (moving between slices) is reported once.
		{Ports: []kapi.EndpointPort{{Name: "http", Port: 7777, Protocol: "TCP"}}, Ready: ready("10.1.0.1")},
	}}
	empty := kapi.Endpoints{Namespace: "default", Service: "world"}
	notReady := kapi.Endpoints{Groups: []kapi.EndpointGroup{{Ports: []kapi.EndpointPort{{Name: "http", Port: 7777, Protocol: "TCP"}}, NotReady: ready("10.1.0.9")}}}

	for _, tc := range []struct {
		name     string
		k        key
		selector string
		ep       kapi.Endpoints
		found    bool
		svc      *kapi.Service
		want     string
	}{
		{"port name, ready only, sorted, deduplicated, case-insensitive", key{port: "http"}, "", ep, true, svc,
			"bound[10.1.0.1:7777@n-1 10.1.0.2:7777@n-2 10.1.1.1:7778@n-1]"},
		{"second port name", key{port: "admin"}, "", ep, true, svc, "bound[10.1.0.1:9991@n-1 10.1.0.2:9991@n-2]"},
		{"unknown port name is negative", key{port: "grpc"}, "", ep, true, svc, "neg"},
		{"UDP port is not a TCP port", key{port: "dns"}, "", ep, true, svc, "neg"},
		{"no endpoints object is negative", key{port: "http"}, "", kapi.Endpoints{}, false, svc, "neg"},
		{"no subsets (zero pods) is negative", key{port: "http"}, "", empty, true, svc, "neg"},
		{"pods present but none ready binds empty", key{port: "http"}, "", notReady, true, svc, "bound[]"},
		{"port number through a named targetPort", key{port: "80"}, "", ep, true, svc,
			"bound[10.1.0.1:7777@n-1 10.1.0.2:7777@n-2 10.1.1.1:7778@n-1]"},
		{"port number through a numeric targetPort", key{port: "9990"}, "", ep, true, svc, "bound[10.1.0.1:9991@n-1 10.1.0.2:9991@n-2]"},
		{"unknown service port number is negative", key{port: "8080"}, "", ep, true, svc, "neg"},
		{"UDP service port number is negative", key{port: "53"}, "", ep, true, svc, "neg"},
		{"port number without a Service is negative", key{port: "80"}, "", ep, true, nil, "neg"},
		{"label matches", key{port: "admin", label: "v1", hasLabel: true}, "version", ep, true, svc, "bound[10.1.0.1:9991@n-1 10.1.0.2:9991@n-2]"},
		{"label differs", key{port: "admin", label: "v2", hasLabel: true}, "version", ep, true, svc, "neg"},
		{"label absent", key{port: "admin", label: "v1", hasLabel: true}, "track", ep, true, svc, "neg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := show(resolveEndpoints(tc.k, tc.selector, tc.ep, tc.found, tc.svc)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestResolveExternal(t *testing.T) {
	svc := &kapi.Service{Ports: []kapi.ServicePort{{Name: "http", Port: 80, Protocol: "TCP"}}, LoadBalancer: []string{"203.0.113.9", "203.0.113.7"}}
	pending := &kapi.Service{Ports: svc.Ports}
	for _, tc := range []struct {
		k    key
		svc  *kapi.Service
		want string
	}{
		{key{port: "http"}, svc, "bound[203.0.113.7:80 203.0.113.9:80]"},
		{key{port: "80"}, svc, "bound[203.0.113.7:80 203.0.113.9:80]"},
		{key{port: "admin"}, svc, "neg"},
		{key{port: "http"}, nil, "neg"},
		{key{port: "http"}, pending, "bound[]"},
	} {
		if got := show(resolveExternal(tc.k, "", tc.svc)); got != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.k, got, tc.want)
		}
	}
}

func TestParsePaths(t *testing.T) {
	n := newNamer(modeK8s, nil, "", "", nil, nil)
	if _, _, ok := n.parse([]string{"default", "http"}); ok {
		t.Error("two segments named something")
	}
	k, l, ok := n.parse([]string{"Default", "HTTP", "World", "rest"})
	if !ok || l != 3 || k != (key{ns: "default", port: "http", svc: "world"}) {
		t.Errorf("got %+v %d %v", k, l, ok)
	}
	n = newNamer(modeNS, nil, "version", "prod", nil, nil)
	k, l, ok = n.parse([]string{"http", "world", "V1", "x"})
	if !ok || l != 3 || k != (key{ns: "prod", port: "http", svc: "world", label: "v1", hasLabel: true}) {
		t.Errorf("got %+v %d %v", k, l, ok)
	}
	if _, _, ok := n.parse([]string{"http", "world"}); ok {
		t.Error("missing label segment named something")
	}
}

func addrs(hosts ...string) []naming.Address {
	var out []naming.Address
	for _, h := range hosts {
		host, node, _ := strings.Cut(h, "@")
		a := naming.Address{Host: host, Port: 8080, Weight: 1}
		if node != "" {
			a.Meta = map[string]any{MetaNodeName: node}
		}
		out = append(out, a)
	}
	return out
}

func showAddr(a naming.Addr) string {
	switch a.State {
	case naming.AddrPending:
		return "pending"
	case naming.AddrNeg:
		return "neg"
	case naming.AddrFailed:
		return "failed"
	}
	return show(result{exists: true, addrs: a.Addrs})
}

func TestDaemonSetAddr(t *testing.T) {
	ds := naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{
		{Host: "10.2.1.5", Port: 4141, Meta: map[string]any{MetaNodeName: "a"}},
		{Host: "10.2.2.5", Port: 4141, Meta: map[string]any{MetaNodeName: "b"}},
	}}
	bound := func(as ...string) naming.Addr { return naming.Addr{State: naming.AddrBound, Addrs: addrs(as...)} }
	for _, tc := range []struct {
		name    string
		dst, ds naming.Addr
		hostNet bool
		want    string
	}{
		{"each destination goes to its node's router, once", bound("10.2.1.9", "10.2.1.10", "10.2.2.3"), ds, false, "bound[10.2.1.5:4141@a 10.2.2.5:4141@b]"},
		{"a destination on a node without a router is dropped", bound("10.2.1.9", "10.2.3.3"), ds, false, "bound[10.2.1.5:4141@a]"},
		{"no destination has a router: negative", bound("10.2.3.3"), ds, false, "neg"},
		{"empty destination stays empty", bound(), ds, false, "bound[]"},
		{"hostNetwork matches by node name", bound("192.168.0.1@b"), ds, true, "bound[10.2.2.5:4141@b]"},
		{"hostNetwork without node name matches nothing", bound("10.2.1.9"), ds, true, "neg"},
		{"negative destination stays negative", naming.Addr{State: naming.AddrNeg}, ds, false, "neg"},
		{"pending destination stays pending", naming.Addr{State: naming.AddrPending}, ds, false, "pending"},
		{"no daemonset service: negative", bound("10.2.1.9"), naming.Addr{State: naming.AddrNeg}, false, "neg"},
		{"daemonset pending: pending", bound("10.2.1.9"), naming.Addr{State: naming.AddrPending}, false, "pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := showAddr(daemonsetAddr(tc.dst, tc.ds, tc.hostNet)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLocalNodeFilter(t *testing.T) {
	ln := &LocalNodeTransformer{local: "10.2.1.7"}
	in := naming.Addr{State: naming.AddrBound, Addrs: addrs("10.2.1.9@a", "10.2.2.9@b", "10.2.1.200@a")}
	if got := showAddr(ln.filter(in)); got != "bound[10.2.1.9:8080@a 10.2.1.200:8080@a]" {
		t.Errorf("subnet: got %s", got)
	}
	ln = &LocalNodeTransformer{local: "b", hostNetwork: true}
	if got := showAddr(ln.filter(in)); got != "bound[10.2.2.9:8080@b]" {
		t.Errorf("hostNetwork: got %s", got)
	}
	if got := showAddr(ln.filter(naming.Addr{State: naming.AddrNeg})); got != "neg" {
		t.Errorf("neg: got %s", got)
	}
}

func TestSameSubnet(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"10.0.1.1", "10.0.1.254", true},
		{"10.0.1.1", "10.0.2.1", false},
		{"fd00::1", "fd00::ffff", true},
		{"fd00:0:0:1::1", "fd00:0:0:2::1", false},
		{"10.0.1.1", "fd00::1", false},
		{"10.0.1.1", "not-an-ip", false},
	} {
		if got := sameSubnet(tc.a, tc.b); got != tc.want {
			t.Errorf("sameSubnet(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestLocalNodeConfig(t *testing.T) {
	env := map[string]string{}
	c := &LocalNodeConfig{getenv: func(k string) string { return env[k] }}
	if _, err := c.NewTransformer(naming.Env{}); err == nil || !strings.Contains(err.Error(), "POD_IP") {
		t.Errorf("missing POD_IP: err = %v", err)
	}
	env["POD_IP"] = "ten"
	if _, err := c.NewTransformer(naming.Env{}); err == nil || !strings.Contains(err.Error(), `"ten"`) {
		t.Errorf("bad POD_IP: err = %v", err)
	}
	env["POD_IP"] = "10.2.1.7"
	tr, err := c.NewTransformer(naming.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.(*LocalNodeTransformer).marker.String(); got != "/%/io.l5d.k8s.localnode/10.2.1.7" {
		t.Errorf("marker %s", got)
	}
	c.HostNetwork = true
	if _, err := c.NewTransformer(naming.Env{}); err == nil || !strings.Contains(err.Error(), "NODE_NAME") {
		t.Errorf("missing NODE_NAME: err = %v", err)
	}
}
