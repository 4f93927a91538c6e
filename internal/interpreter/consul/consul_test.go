package consul

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namer/consul/consultest"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/naming/dtabsource"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestMain(m *testing.M) { os.Exit(consultest.Main(m)) }

var nsSeq atomic.Int64

func namespace() string { return fmt.Sprintf("interp%d-%d", os.Getpid(), nsSeq.Add(1)) }

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

func decode(t *testing.T, text string) *Config {
	t.Helper()
	var w struct {
		Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
	}
	if err := config.Load([]byte(text), &w); err != nil {
		t.Fatal(err)
	}
	return w.Interpreter.Value.(*Config)
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

// TestFollowConsulKey follows a namespace's key in a real Consul agent.
func TestFollowConsulKey(t *testing.T) {
	a := consultest.Shared(t)
	ns := namespace()
	c := decode(t, fmt.Sprintf("interpreter:\n  kind: io.l5d.consul.interpreter\n  host: 127.0.0.1\n  port: %d\n  namespace: %s\n", a.Port(), ns))
	if c.PathPrefix != "/namerd/dtabs" {
		t.Fatalf("pathPrefix default %q", c.PathPrefix)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var lb logBuf
	in, err := c.NewInterpreter(naming.InterpreterEnv{Env: naming.Env{Ctx: ctx, Logger: slog.New(slog.NewTextHandler(&lb, nil))}})
	if err != nil {
		t.Fatal(err)
	}
	live := in.(*dtabsource.Interpreter).Live()

	// No key: the empty dtab.
	if !linnettest.WaitFor(10*time.Second, func() bool { return live.Value().Get().State == watch.Ok }) {
		t.Fatalf("missing key: %+v", live.Value().Get())
	}
	key := "/v1/kv/namerd/dtabs/" + ns
	a.MustDo(t, http.MethodPut, key, "/svc => /#/one;")
	waitDtab(t, live, "/svc => /#/one")
	a.MustDo(t, http.MethodPut, key, "/svc => /#/two;")
	waitDtab(t, live, "/svc => /#/two")

	a.MustDo(t, http.MethodPut, key, "/svc => => bad")
	if !linnettest.WaitFor(10*time.Second, func() bool { return strings.Contains(lb.String(), "keeping the last good dtab") }) {
		t.Fatalf("bad value not logged: %s", lb.String())
	}
	waitDtab(t, live, "/svc => /#/two")
	a.MustDo(t, http.MethodPut, key, "/svc => /#/three;")
	waitDtab(t, live, "/svc => /#/three")
	a.MustDo(t, http.MethodDelete, key, nil)
	waitDtab(t, live, "")
}

func TestConfigErrors(t *testing.T) {
	var w struct {
		Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
	}
	for _, tc := range []struct{ yaml, want string }{
		{"interpreter:\n  kind: io.l5d.consul.interpreter\n", "missing required key `namespace`"},
		{"interpreter:\n  kind: io.l5d.consul.interpreter\n  namespace: a/b\n", "namespace"},
		{"interpreter:\n  kind: io.l5d.consul.interpreter\n  namespace: x\n  pathPrefix: nope\n", "pathPrefix"},
		{"interpreter:\n  kind: io.l5d.consul.interpreter\n  namespace: x\n  readConsistencyMode: eventually\n", "readConsistencyMode"},
	} {
		err := config.Load([]byte(tc.yaml), &w)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error naming %s", tc.yaml, err, tc.want)
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

// TestRouterFollowsConsulDtab runs the linnet binary with an
// io.l5d.consul.interpreter: a KV edit re-routes requests, a bad value
// changes nothing.
func TestRouterFollowsConsulDtab(t *testing.T) {
	a := consultest.Shared(t)
	ns := namespace()
	disco := t.TempDir()
	for _, n := range []string{"one", "two"} {
		if err := os.WriteFile(filepath.Join(disco, n), fmt.Appendf(nil, "127.0.0.1 %d\n", backend(t, n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key := "/v1/kv/linnet/dtabs/" + ns
	a.MustDo(t, http.MethodPut, key, "/svc/web => /#/io.l5d.fs/one;")

	admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
	p := linnettest.StartRouter(t, fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
namers:
- kind: io.l5d.fs
  rootDir: %s
routers:
- protocol: http
  label: kv
  interpreter:
    kind: io.l5d.consul.interpreter
    host: 127.0.0.1
    port: %d
    pathPrefix: /linnet/dtabs
    namespace: %s
  servers:
  - ip: 127.0.0.1
    port: %d
`, admin, disco, a.Port(), ns, port), admin)

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
	expect("the stored dtab", "one")
	a.MustDo(t, http.MethodPut, key, "/svc/web => /#/io.l5d.fs/two;")
	expect("after the KV edit", "two")
	a.MustDo(t, http.MethodPut, key, "/svc/web => => nope")
	if !linnettest.WaitFor(10*time.Second, func() bool { return strings.Contains(p.Output(), "keeping the last good dtab") }) {
		t.Fatalf("bad value not logged:\n%s", p.Output())
	}
	for range 5 {
		if code, body, err := get(); err != nil || code != 200 || body != "two" {
			t.Fatalf("after a bad value: %d %q %v", code, body, err)
		}
	}
}
