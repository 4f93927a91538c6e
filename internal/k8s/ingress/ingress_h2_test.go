package ingress

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/proxy/h2"
	"github.com/linnet-mesh/linnet/internal/routerd"
)

// TestH2IngressConfig: on an h2 router, io.l5d.ingress decodes through the
// h2 identifier registry with the same keys, defaults and errors as on an
// http router.
func TestH2IngressConfig(t *testing.T) {
	var cfg struct {
		Identifier config.Kinded[h2.IdentifierConfig] `yaml:"identifier"`
	}
	if err := config.Load([]byte("identifier:\n  kind: io.l5d.ingress\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	c, ok := cfg.Identifier.Value.(*Config)
	if !ok {
		t.Fatalf("h2 io.l5d.ingress decoded to %T, want *ingress.Config", cfg.Identifier.Value)
	}
	want := Config{IngressClassAnnotation: "linkerd", Host: "localhost", Port: 8001, SyncTimeoutMs: 10000}
	if *c != want {
		t.Errorf("defaults %+v, want %+v", *c, want)
	}
	for text, msg := range map[string]string{
		"identifier:\n  kind: io.l5d.ingress\n  port: 0\n":                      `identifier.port: 0 is not a port (1-65535) (line 3)`,
		"identifier:\n  kind: io.l5d.ingress\n  ingressClassAnnotation: \"\"\n": `identifier.ingressClassAnnotation: must not be empty (line 3)`,
		"identifier:\n  kind: io.l5d.ingress\n  hots: x\n":                      "hots",
	} {
		err := config.Load([]byte(text), &cfg)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want it to contain %q", text, err, msg)
		}
	}
}

// TestH2IngressRouter is servicemesh.yml's pair of ingress controllers
// (http-ingress and h2-ingress, both `identifier: {kind: io.l5d.ingress}`,
// with clearContext servers) started from config text against a real API
// server. Real h2c (prior knowledge) requests reach the h2c backend the
// Ingress names, under the same names the http router gives the same
// requests; a request no rule matches gets the http router's 400 and
// l5d-err; an Ingress added later is followed. The reference's dtab
// /svc => /#/io.l5d.k8s would bind to EndpointSlice addresses, which the
// API refuses on loopback, so the dtab maps each name to its loopback
// backend instead (TestIngressWalkthrough binds through io.l5d.k8s).
func TestH2IngressRouter(t *testing.T) {
	a := newAPI(t)
	svc := "/svc/" + a.ns
	hello, world := startH2CBackend(t, "hello"), startH2CBackend(t, "world")
	dt := fmt.Sprintf("%[1]s/http/hello => /$/inet/%[2]s; %[1]s/80/world => /$/inet/%[3]s; %[1]s/http/world => /$/inet/%[3]s",
		svc, strings.Replace(hello, ":", "/", 1), strings.Replace(world, ":", "/", 1))
	a.ingress(&networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-world", Annotations: map[string]string{"kubernetes.io/ingress.class": "linkerd"}},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
			{Host: "www.hello.world", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{
					{Path: "/api/v[0-9]+", PathType: ptr(networkingv1.PathTypeImplementationSpecific), Backend: *svcBackend("world", "80")},
					{Path: "/", PathType: ptr(networkingv1.PathTypePrefix), Backend: *svcBackend("hello", "http")},
				}}}},
		}},
	})

	c := a.srv.ProxyConn(t)
	ident := fmt.Sprintf("{kind: io.l5d.ingress, namespace: %s, host: %s, port: %d}", a.ns, c.Host, c.Port)
	text := fmt.Sprintf(`admin: {ip: 127.0.0.1, port: 0}
routers:
- protocol: http
  label: http-ingress
  servers: [{ip: 127.0.0.1, port: 0}, {ip: 127.0.0.1, port: 0, clearContext: true}]
  identifier: %[1]s
  dtab: %[2]s
- protocol: h2
  experimental: true
  label: h2-ingress
  servers: [{ip: 127.0.0.1, port: 0}, {ip: 127.0.0.1, port: 0, clearContext: true}]
  identifier: %[1]s
  dtab: %[2]s
`, ident, dt)
	cfg, err := routerd.LoadConfig([]byte(text))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	p, err := routerd.Start(context.Background(), cfg, routerd.Options{Text: []byte(text)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	addrs := p.ServerAddrs()
	if len(addrs) != 4 {
		t.Fatalf("server addresses %v, want 4", addrs)
	}

	var h2Protos http.Protocols
	h2Protos.SetUnencryptedHTTP2(true)
	h2Client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &h2Protos}}
	h1Client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	type router struct {
		name                string
		client              *http.Client
		plain, clearContext string
		proto               int // HTTP major version on both sides of the router
	}
	routers := []router{
		{"http-ingress", h1Client, addrs[0], addrs[1], 1},
		{"h2-ingress", h2Client, addrs[2], addrs[3], 2},
	}

	cases := []struct{ host, path, backend, name string }{
		{"www.hello.world", "/", "hello", svc + "/http/hello"},
		{"WWW.hello.world:8080", "/some/page?q=1", "hello", svc + "/http/hello"},
		{"www.hello.world", "/api/v2", "world", svc + "/80/world"},
		{"www.hello.world", "/api/v3?page=2", "world", svc + "/80/world"}, // the path without its query
		{"www.hello.world", "/api/v2/x", "hello", svc + "/http/hello"},    // the regexp must match the whole path
	}
	for _, rt := range routers {
		for _, srv := range []string{rt.plain, rt.clearContext} {
			for _, tc := range cases {
				// The first request of a name waits for its endpoints.
				res := awaitStatus(t, rt.client, srv, tc.host, tc.path, http.StatusOK)
				if res.proto != rt.proto {
					t.Errorf("%s %s%s: answered over HTTP/%d, want HTTP/%d", rt.name, tc.host, tc.path, res.proto, rt.proto)
				}
				want := backendAnswer{backend: tc.backend, authority: tc.host, dst: tc.name, proto: rt.proto}
				if res.answer != want {
					t.Errorf("%s %s%s: backend saw %+v, want %+v", rt.name, tc.host, tc.path, res.answer, want)
				}
			}
		}
	}

	// No rule matches: the same 400 and l5d-err on both routers (except
	// the client's address); no l5d-err and no body on clearContext servers.
	var wantMsg string
	for _, rt := range routers {
		res := awaitStatus(t, rt.client, rt.plain, "nowhere.example", "/x", http.StatusBadRequest)
		msg := clientAddr.ReplaceAllString(res.l5dErr, "from <client>)")
		if want := `Unknown destination: Request("GET /x", from <client>) / no ingress rule matches host "nowhere.example" path "/x"`; msg != want {
			t.Errorf("%s: l5d-err %q, want %q", rt.name, res.l5dErr, want)
		}
		if res.body != res.l5dErr {
			t.Errorf("%s: body %q differs from l5d-err %q", rt.name, res.body, res.l5dErr)
		}
		if wantMsg == "" {
			wantMsg = msg
		} else if msg != wantMsg {
			t.Errorf("%s: l5d-err %q, the http router's %q", rt.name, msg, wantMsg)
		}
		res = awaitStatus(t, rt.client, rt.clearContext, "nowhere.example", "/x", http.StatusBadRequest)
		if res.l5dErr != "" || res.body != "" {
			t.Errorf("%s clearContext: l5d-err %q, body %q; want neither", rt.name, res.l5dErr, res.body)
		}
	}

	// An Ingress added while the routers run is followed by both.
	a.ingress(&networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "late"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "late.example", IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr(networkingv1.PathTypePrefix), Backend: *svcBackend("world", "http")}}}}}}},
	})
	for _, rt := range routers {
		res := awaitStatus(t, rt.client, rt.plain, "late.example", "/", http.StatusOK)
		if want := (backendAnswer{backend: "world", authority: "late.example", dst: svc + "/http/world", proto: rt.proto}); res.answer != want {
			t.Errorf("%s late.example: backend saw %+v, want %+v", rt.name, res.answer, want)
		}
	}
}

// clientAddr matches the caller's address in an "Unknown destination"
// message.
var clientAddr = regexp.MustCompile(`from 127\.0\.0\.1:[0-9]+\)`)

// TestH2IngressStopsWithRouter: the identifier stops following Ingress
// changes when its router's context ends, even while another holder keeps
// the shared Kubernetes client running.
func TestH2IngressStopsWithRouter(t *testing.T) {
	a := newAPI(t)
	c := a.srv.ProxyConn(t)
	var cfg struct {
		Identifier config.Kinded[h2.IdentifierConfig] `yaml:"identifier"`
	}
	text := fmt.Sprintf("identifier:\n  kind: io.l5d.ingress\n  namespace: %s\n  host: %s\n  port: %d\n", a.ns, c.Host, c.Port)
	if err := config.Load([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	build := func(ctx context.Context) proxy.Identifier {
		t.Helper()
		id, err := cfg.Identifier.Value.NewIdentifier(proxy.IdentifierEnv{Ctx: ctx, DstPrefix: dtab.Path{"svc"}, Label: "h2-ingress"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	liveCtx, cancelLive := context.WithCancel(context.Background())
	defer cancelLive()
	live := build(liveCtx)
	stoppedCtx, stop := context.WithCancel(context.Background())
	stopped := build(stoppedCtx)
	identify(t, stopped, "a.example", "/", "")
	stop()
	// The listener is removed by a context.AfterFunc goroutine: let it run.
	time.Sleep(100 * time.Millisecond)

	a.ingress(&networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "a"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "a.example", IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr(networkingv1.PathTypePrefix), Backend: *svcBackend("a", "http")}}}}}}},
	})
	identify(t, live, "a.example", "/", "/svc/"+a.ns+"/http/a")
	// The live identifier has seen the change, so the stopped one would
	// have been told by now.
	if p, err := stopped.Identify(h2Request("a.example", "/")); err == nil {
		t.Errorf("the identifier of a stopped router still follows ingresses: named %s", p)
	}
}

// h2Request is a request as the h2 server hands it to identifiers:
// :authority in Host, :path in URL.
func h2Request(authority, path string) *http.Request {
	r, _ := http.NewRequest("GET", "http://"+authority+path, nil)
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	return r
}

// backendAnswer is what a test backend saw.
type backendAnswer struct {
	backend   string
	authority string // Host / :authority
	dst       string // l5d-dst-service
	proto     int
}

// startH2CBackend serves cleartext HTTP/2 (prior knowledge), and HTTP/1.1
// for the http router, and answers with what it saw.
func startH2CBackend(t *testing.T, name string) string {
	t.Helper()
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s\n%s\n%s\n%d", name, r.Host, r.Header.Get("l5d-dst-service"), r.ProtoMajor)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

type result struct {
	status       int
	proto        int
	l5dErr, body string
	answer       backendAnswer
}

// awaitStatus sends GET host+path to the router server at addr until it
// answers status (a new name waits for the API's listings), for 20s.
func awaitStatus(t *testing.T, c *http.Client, addr, host, path string, status int) result {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := get(c, addr, host, path)
		if err == nil && res.status == status {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s%s: got %+v (%v), want status %d", addr, host, path, res, err, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(c *http.Client, addr, host, path string) (result, error) {
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		return result{}, err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	res := result{status: resp.StatusCode, proto: resp.ProtoMajor, body: string(b)}
	if v := resp.Header.Get("l5d-err"); v != "" {
		if res.l5dErr, err = url.QueryUnescape(v); err != nil {
			return res, fmt.Errorf("l5d-err %q: %v", v, err)
		}
	}
	if resp.StatusCode == http.StatusOK {
		f := strings.Split(res.body, "\n")
		if len(f) != 4 {
			return res, fmt.Errorf("unexpected backend answer %q", res.body)
		}
		res.answer = backendAnswer{backend: f[0], authority: f[1], dst: f[2]}
		res.answer.proto, _ = strconv.Atoi(f[3])
	}
	return res, nil
}
