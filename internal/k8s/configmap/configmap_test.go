package configmap

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/k8s"
	"github.com/linnet-mesh/linnet/internal/k8s/k8stest"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/naming/dtabsource"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }

var nsSeq atomic.Int64

type api struct {
	t    *testing.T
	srv  *k8stest.Server
	ns   string
	core typedcorev1.CoreV1Interface
	ctx  context.Context
}

func newAPI(t *testing.T) *api {
	t.Helper()
	srv := k8stest.Shared(t)
	cfg, err := srv.Conn().RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	a := &api{t: t, srv: srv, ns: fmt.Sprintf("cm%d-%d", os.Getpid(), nsSeq.Add(1))}
	if a.core, err = typedcorev1.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	a.ctx = ctx
	if _, err := a.core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: a.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return a
}

// put creates or updates ConfigMap name with data.
func (a *api) put(name string, data map[string]string) {
	a.t.Helper()
	cms := a.core.ConfigMaps(a.ns)
	cm, err := cms.Get(a.ctx, name, metav1.GetOptions{})
	if err != nil {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.ns}, Data: data}
		if _, err := cms.Create(a.ctx, cm, metav1.CreateOptions{}); err != nil {
			a.t.Fatal(err)
		}
		return
	}
	cm.Data = data
	if _, err := cms.Update(a.ctx, cm, metav1.UpdateOptions{}); err != nil {
		a.t.Fatal(err)
	}
}

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitDtab(t *testing.T, live *dtabsource.Live, want string) {
	t.Helper()
	w := dtab.MustParse(want)
	if !linnettest.WaitFor(10*time.Second, func() bool {
		d, ok := live.Current()
		return ok && d.Equal(w)
	}) {
		d, ok := live.Current()
		t.Fatalf("dtab never became %q; have %q (ok=%v)", want, d, ok)
	}
}

// TestFollowConfigMap follows a ConfigMap key through creation, updates,
// a bad value, a missing key and deletion, against a real API server.
func TestFollowConfigMap(t *testing.T) {
	a := newAPI(t)
	conn := a.srv.ProxyConn(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var lb logBuf
	logger := slog.New(slog.NewTextHandler(&lb, nil))
	cl, err := k8s.Acquire(ctx, conn, k8s.Options{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	env := naming.InterpreterEnv{Env: naming.Env{Ctx: ctx, Logger: logger}}

	// Not there yet: listed as absent, the empty dtab.
	live := Follow(cl, a.ns, "l5d-dtabs", "outgoing", env)
	if !linnettest.WaitFor(10*time.Second, func() bool { return live.Value().Get().State == watch.Ok }) {
		t.Fatalf("absent ConfigMap: %+v", live.Value().Get())
	}
	if d, _ := live.Current(); len(d) != 0 {
		t.Fatalf("absent ConfigMap: dtab %q", d)
	}

	a.put("l5d-dtabs", map[string]string{"outgoing": "/svc => /#/one;", "other": "/x => /y"})
	waitDtab(t, live, "/svc => /#/one")
	a.put("l5d-dtabs", map[string]string{"outgoing": "/svc => /#/two;"})
	waitDtab(t, live, "/svc => /#/two")

	a.put("l5d-dtabs", map[string]string{"outgoing": "/svc => => nope"})
	if !linnettest.WaitFor(10*time.Second, func() bool { return strings.Contains(lb.String(), "keeping the last good dtab") }) {
		t.Fatalf("bad value not logged: %s", lb.String())
	}
	if !strings.Contains(lb.String(), a.ns+"/l5d-dtabs") {
		t.Fatalf("log does not name the ConfigMap: %s", lb.String())
	}
	waitDtab(t, live, "/svc => /#/two")

	a.put("l5d-dtabs", map[string]string{"outgoing": "/svc => /#/three;"})
	waitDtab(t, live, "/svc => /#/three")

	// Key removed: empty, as in Linkerd.
	a.put("l5d-dtabs", map[string]string{"other": "/a => /b"})
	waitDtab(t, live, "")
	a.put("l5d-dtabs", map[string]string{"outgoing": "/svc => /#/four;"})
	waitDtab(t, live, "/svc => /#/four")
	if err := a.core.ConfigMaps(a.ns).Delete(a.ctx, "l5d-dtabs", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDtab(t, live, "")

	// One object, by field selector, not the namespace's ConfigMaps.
	reqs := a.srv.ProxyRequests("/namespaces/" + a.ns + "/configmaps")
	if len(reqs) == 0 {
		t.Fatal("no ConfigMap requests seen")
	}
	for _, r := range reqs {
		if !strings.Contains(r, "fieldSelector=metadata.name%3Dl5d-dtabs") {
			t.Fatalf("ConfigMap request without the name selector: %s", r)
		}
	}
}

func backend(t *testing.T, name string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// TestRouterFollowsConfigMap runs the linnet binary with an
// io.l5d.k8s.configMap interpreter: a ConfigMap edit re-routes requests,
// a bad edit changes nothing.
func TestRouterFollowsConfigMap(t *testing.T) {
	a := newAPI(t)
	conn := a.srv.ProxyConn(t)
	disco := t.TempDir()
	for _, n := range []string{"one", "two"} {
		if err := os.WriteFile(filepath.Join(disco, n), fmt.Appendf(nil, "127.0.0.1 %d\n", backend(t, n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a.put("l5d", map[string]string{"dtab": "/svc/web => /#/io.l5d.fs/one;"})

	admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
	p := linnettest.StartRouter(t, fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
namers:
- kind: io.l5d.fs
  rootDir: %s
routers:
- protocol: http
  label: cm
  interpreter:
    kind: io.l5d.k8s.configMap
    experimental: true
    host: %s
    port: %d
    namespace: %s
    name: l5d
    filename: dtab
  servers:
  - ip: 127.0.0.1
    port: %d
`, admin, disco, conn.Host, conn.Port, a.ns, port), admin)

	client := &http.Client{Timeout: 5 * time.Second}
	get := func() (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		req.Host = "web"
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	expect := func(what, want string) {
		t.Helper()
		var code int
		var body string
		var err error
		if !linnettest.WaitFor(15*time.Second, func() bool {
			code, body, err = get()
			return err == nil && code == 200 && body == want
		}) {
			t.Fatalf("%s: got %d %q %v; want 200 %q\n%s", what, code, body, err, want, p.Output())
		}
	}
	expect("the ConfigMap's dtab", "one")
	a.put("l5d", map[string]string{"dtab": "/svc/web => /#/io.l5d.fs/two;"})
	expect("after the ConfigMap edit", "two")
	a.put("l5d", map[string]string{"dtab": "/svc/web => => /#/io.l5d.fs/one;"})
	if !linnettest.WaitFor(10*time.Second, func() bool { return strings.Contains(p.Output(), "keeping the last good dtab") }) {
		t.Fatalf("bad ConfigMap value not logged:\n%s", p.Output())
	}
	for range 5 {
		if code, body, err := get(); err != nil || code != 200 || body != "two" {
			t.Fatalf("after a bad edit: %d %q %v", code, body, err)
		}
	}
}

// TestRouterRequiresExperimental: Linkerd refuses this kind without
// `experimental: true`; so does linnet, naming the key.
func TestRouterRequiresExperimental(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, linnettest.Bin(t), "router", "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf(`routers:
- protocol: http
  interpreter:
    kind: io.l5d.k8s.configMap
    name: l5d
    filename: dtab
  servers:
  - ip: 127.0.0.1
    port: %d
`, linnettest.FreePort(t)))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "requires `experimental: true`") {
		t.Fatalf("started without experimental: %v\n%s", err, out)
	}
	cmd = exec.CommandContext(ctx, linnettest.Bin(t), "router", "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf(`routers:
- protocol: http
  interpreter:
    kind: io.l5d.k8s.configMap
    experimental: true
    filename: dtab
  servers:
  - ip: 127.0.0.1
    port: %d
`, linnettest.FreePort(t)))
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing required key `name`") {
		t.Fatalf("started without name: %v\n%s", err, out)
	}
}
