package thrift_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/namerd/thrift"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"

	_ "github.com/linnet-mesh/linnet/internal/namer/fs"
	_ "github.com/linnet-mesh/linnet/internal/storage/memory"
)

// freePort returns a loopback port that was free a moment ago (namerd is
// restarted on the same ports).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type namerdProc struct {
	t                    *testing.T
	dir                  string
	thriftPort, httpPort int
	p                    *namerd.Process
}

// start runs a real namerd: the in-memory store, an io.l5d.fs namer over
// dir, the thrift interface and the HTTP controller.
func (n *namerdProc) start() {
	n.t.Helper()
	text := fmt.Sprintf(`admin: {ip: 127.0.0.1, port: 0}
storage:
  kind: io.l5d.inMemory
  namespaces:
    internal: /svc => /#/io.l5d.fs
namers:
- kind: io.l5d.fs
  rootDir: %s
interfaces:
- kind: io.l5d.thriftNameInterpreter
  ip: 127.0.0.1
  port: %d
  retryBaseSecs: 1
  retryJitterSecs: 0
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: %d
`, n.dir, n.thriftPort, n.httpPort)
	var cfg namerd.Config
	if err := config.Load([]byte(text), &cfg); err != nil {
		n.t.Fatal(err)
	}
	var err error
	for range 50 { // the port may linger briefly after a restart
		if n.p, err = namerd.Start(context.Background(), &cfg, namerd.Options{Text: []byte(text)}); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatal(err)
}

func (n *namerdProc) stop() {
	if n.p != nil {
		if err := n.p.Stop(); err != nil {
			n.t.Errorf("namerd stop: %v", err)
		}
		n.p = nil
	}
}

// putDtab replaces a namespace's dtab through the HTTP API, as namerctl.
func (n *namerdProc) putDtab(ns, text string) {
	n.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://127.0.0.1:%d/api/1/dtabs/%s", n.httpPort, ns), strings.NewReader(text))
	req.Header.Set("Content-Type", "application/dtab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		n.t.Fatalf("PUT dtab: %d %s", resp.StatusCode, b)
	}
}

func startNamerd(t *testing.T) *namerdProc {
	dir := t.TempDir()
	writeFile(t, dir, "web", "127.0.0.1 7001\n127.0.0.1 7002\n")
	writeFile(t, dir, "web2", "127.0.0.1 7003\n")
	n := &namerdProc{t: t, dir: dir, thriftPort: freePort(t), httpPort: freePort(t)}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// newInterpreter builds io.l5d.namerd from router config text, as a router
// does.
func newInterpreter(t *testing.T, ctx context.Context, port int, extra string) naming.Interpreter {
	return newInterpreterScope(t, ctx, port, extra, telemetry.Scope{})
}

func newInterpreterScope(t *testing.T, ctx context.Context, port int, extra string, scope telemetry.Scope) naming.Interpreter {
	t.Helper()
	var c struct {
		Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
	}
	text := fmt.Sprintf("interpreter:\n  kind: io.l5d.namerd\n  dst: /$/inet/127.0.0.1/%d\n  namespace: internal\n  retry: {baseSeconds: 1, maxSeconds: 1}\n%s", port, extra)
	if err := config.Load([]byte(text), &c); err != nil {
		t.Fatal(err)
	}
	in, err := c.Interpreter.Value.NewInterpreter(naming.InterpreterEnv{Env: naming.Env{Ctx: ctx, Scope: scope}})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// recorder keeps the latest value of a subscription and lets a test wait
// for a condition on it.
type recorder[T any] struct {
	mu  sync.Mutex
	v   T
	ch  chan struct{}
	off func()
}

func record[T any](t *testing.T, v watch.Value[T]) *recorder[T] {
	r := &recorder[T]{ch: make(chan struct{}, 1)}
	r.off = v.Subscribe(func(x T) {
		r.mu.Lock()
		r.v = x
		r.mu.Unlock()
		select {
		case r.ch <- struct{}{}:
		default:
		}
	})
	t.Cleanup(r.off)
	return r
}

func (r *recorder[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.v
}

// await waits up to d for ok to hold on the latest value.
func (r *recorder[T]) await(t *testing.T, what string, d time.Duration, ok func(T) bool) T {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if v := r.get(); ok(v) {
			return v
		}
		select {
		case <-r.ch:
		case <-deadline.C:
			t.Fatalf("%s: not within %v; last value %+v", what, d, r.get())
		}
	}
}

func leafID(a watch.Activity[naming.BoundTree]) string {
	if a.State != watch.Ok || a.Value.Kind != dtab.Leaf || a.Value.Value == nil {
		return ""
	}
	return a.Value.Value.ID.String()
}

func hostPorts(a naming.Addr) string {
	if a.State != naming.AddrBound {
		return fmt.Sprintf("state %d", a.State)
	}
	var out []string
	for _, x := range a.Addrs {
		out = append(out, x.HostPort())
	}
	return strings.Join(out, ",")
}

// The router's io.l5d.namerd interpreter against a real namerd over the
// thrift interface: bind, dtab and address updates, a namerd restart.
func TestInterpreterAgainstNamerd(t *testing.T) {
	n := startNamerd(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scope := telemetry.NewRegistry().Scope()
	in := newInterpreterScope(t, ctx, n.thriftPort, "", scope)

	b := record(t, in.Bind(nil, dtab.MustParsePath("/svc/web")))
	got := b.await(t, "bind /svc/web", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if leafID(got) != "/#/io.l5d.fs/web" || len(got.Value.Value.Residual) != 0 {
		t.Fatalf("bind /svc/web: %+v", got)
	}
	addr := record[naming.Addr](t, got.Value.Value.Addr)
	addr.await(t, "addresses of web", 5*time.Second, func(a naming.Addr) bool {
		return hostPorts(a) == "127.0.0.1:7001,127.0.0.1:7002"
	})

	// A dtab update made through the HTTP API reaches the router within 1s.
	start := time.Now()
	n.putDtab("internal", "/svc => /#/io.l5d.fs; /svc/web => /#/io.l5d.fs/web2")
	got = b.await(t, "bind after dtab update", time.Second, func(a watch.Activity[naming.BoundTree]) bool { return leafID(a) == "/#/io.l5d.fs/web2" })
	t.Logf("dtab update seen after %v", time.Since(start))
	addr2 := record[naming.Addr](t, got.Value.Value.Addr)
	addr2.await(t, "addresses of web2", 5*time.Second, func(a naming.Addr) bool { return hostPorts(a) == "127.0.0.1:7003" })

	// An address change in the fs namer.
	start = time.Now()
	writeFile(t, n.dir, "web2", "127.0.0.1 7004\n127.0.0.1 7005\n")
	addr2.await(t, "addresses after the file changed", time.Second, func(a naming.Addr) bool {
		return hostPorts(a) == "127.0.0.1:7004,127.0.0.1:7005"
	})
	t.Logf("address change seen after %v", time.Since(start))

	// namerd goes away: the router keeps the last state.
	n.stop()
	time.Sleep(300 * time.Millisecond)
	if id := leafID(b.get()); id != "/#/io.l5d.fs/web2" {
		t.Fatalf("binding after namerd stopped: %+v", b.get())
	}
	if hp := hostPorts(addr2.get()); hp != "127.0.0.1:7004,127.0.0.1:7005" {
		t.Fatalf("addresses after namerd stopped: %s", hp)
	}
	// It comes back (with its initial dtab, the in-memory store is new):
	// the router reconnects and follows it again.
	n.start()
	b.await(t, "bind after namerd restart", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return leafID(a) == "/#/io.l5d.fs/web" })
	n.putDtab("internal", "/svc => /#/io.l5d.fs; /svc/web => /#/io.l5d.fs/web2")
	b.await(t, "dtab update after restart", time.Second, func(a watch.Activity[naming.BoundTree]) bool { return leafID(a) == "/#/io.l5d.fs/web2" })

	ms := scope.Scope("interpreter", "io.l5d.namerd")
	if ok, failed := ms.Scope("bind").Counter("success").Value(), ms.Scope("bind").Counter("failure").Value(); ok < 4 || failed < 1 {
		t.Errorf("bind metrics: %d successes, %d failures; want >= 4 and >= 1 (the restart)", ok, failed)
	}
	if ok := ms.Scope("addr").Counter("success").Value(); ok < 3 {
		t.Errorf("addr successes: %d, want >= 3", ok)
	}
}

// Trees with alternatives and weights, and names that do not exist.
func TestInterpreterTrees(t *testing.T) {
	n := startNamerd(t)
	n.putDtab("internal", "/svc => /#/io.l5d.fs; /svc/alt => /#/io.l5d.fs/nope | /#/io.l5d.fs/web; /svc/split => 3 * /#/io.l5d.fs/web & 1 * /#/io.l5d.fs/web2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := newInterpreter(t, ctx, n.thriftPort, "")

	alt := record(t, in.Bind(nil, dtab.MustParsePath("/svc/alt/x"))).await(t, "alt", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if leafID(alt) != "/#/io.l5d.fs/web" || alt.Value.Value.Residual.String() != "/x" {
		t.Fatalf("alt: %s", show(alt.Value))
	}
	split := record(t, in.Bind(nil, dtab.MustParsePath("/svc/split"))).await(t, "split", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if split.State != watch.Ok || show(split.Value) != "3.00*/#/io.l5d.fs/web & /#/io.l5d.fs/web2" {
		t.Fatalf("split: %v %s", split.State, show(split.Value))
	}
	neg := record(t, in.Bind(nil, dtab.MustParsePath("/other/x"))).await(t, "neg", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if neg.State != watch.Ok || neg.Value.Kind != dtab.Neg {
		t.Fatalf("unbound name: %v %s", neg.State, show(neg.Value))
	}
	// The router's own dtab (and a request's) travel with the bind.
	local := record(t, in.Bind(dtab.MustParse("/other => /#/io.l5d.fs"), dtab.MustParsePath("/other/web2"))).await(t, "local dtab", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if leafID(local) != "/#/io.l5d.fs/web2" {
		t.Fatalf("bind with a local dtab: %v %s", local.State, show(local.Value))
	}
}

func show(t naming.BoundTree) string {
	return dtab.ShowTreeFunc(t, func(b *naming.Bound) string {
		if b == nil {
			return "?"
		}
		return b.ID.String()
	})
}

// A binding that namerd cannot compute is reported as a failure, and
// recovers when the dtab is fixed.
func TestInterpreterBindFailure(t *testing.T) {
	n := startNamerd(t)
	n.putDtab("internal", "/svc => /#/io.l5d.fs; /svc/loop => /svc/loop")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := newInterpreter(t, ctx, n.thriftPort, "")
	b := record(t, in.Bind(nil, dtab.MustParsePath("/svc/loop")))
	got := b.await(t, "bind of a looping name", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if got.State != watch.Failed || got.Err == nil || !strings.Contains(got.Err.Error(), "namerd") {
		t.Fatalf("bind of a looping name: %v %v %s", got.State, got.Err, show(got.Value))
	}
	t.Logf("failure: %v", got.Err)
	n.putDtab("internal", "/svc => /#/io.l5d.fs; /svc/loop => /#/io.l5d.fs/web")
	b.await(t, "recovery", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return leafID(a) == "/#/io.l5d.fs/web" })
}

var _ = thrift.InterpreterKind

// The router's delegator, explained by namerd over thrift, matches what
// namerd's HTTP API explains (addresses included).
func TestInterpreterExplain(t *testing.T) {
	n := startNamerd(t)
	n.putDtab("internal", "/svc => /#/io.l5d.fs; /svc/web => /#/io.l5d.fs/web2 | /#/io.l5d.fs/nope; /svc/split => 3 * /svc/web & 1 * /$/fail")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := newInterpreter(t, ctx, n.thriftPort, "")
	for _, p := range []string{"/svc/web", "/svc/split", "/nothing/here"} {
		ectx, ecancel := context.WithTimeout(ctx, 5*time.Second)
		node, err := naming.Delegate(ectx, in, dtab.MustParse("/extra => /svc"), dtab.MustParsePath(p))
		ecancel()
		if err != nil {
			t.Fatalf("explain %s: %v", p, err)
		}
		got := string(naming.MarshalDelegateJSON(node))
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/1/delegate/internal?path=%s&dtab=%s", n.httpPort, p, "/extra=>/svc"))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got != string(want) {
			t.Errorf("explain %s over thrift:\n got  %s\n want %s", p, got, want)
		}
	}
}
