package thrift_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest/inproc"
	"github.com/linnet-mesh/linnet/internal/namerd/thrift"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
	"github.com/linnet-mesh/linnet/internal/watch"

	_ "github.com/linnet-mesh/linnet/internal/namer/fs"
	_ "github.com/linnet-mesh/linnet/internal/storage/memory"
)

// namerdProc is a real namerd with the in-memory store, an io.l5d.fs
// namer over dir, the thrift interface and the HTTP controller, on
// loopback ports that survive restarts.
type namerdProc struct {
	*inproc.Namerd
	t                    *testing.T
	dir                  string
	thriftPort, httpPort int
}

func (n *namerdProc) start() {
	n.t.Helper()
	n.Start(fmt.Sprintf(`admin: {ip: 127.0.0.1, port: 0}
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
`, n.dir, n.thriftPort, n.httpPort))
}

func (n *namerdProc) putDtab(ns, text string) { namerdtest.PutDtab(n.t, n.httpPort, ns, text) }

func startNamerd(t *testing.T) *namerdProc {
	dir := t.TempDir()
	namerdtest.WriteFile(t, dir, "web", "127.0.0.1 7001\n127.0.0.1 7002\n")
	namerdtest.WriteFile(t, dir, "web2", "127.0.0.1 7003\n")
	n := &namerdProc{Namerd: inproc.New(t), t: t, dir: dir, thriftPort: linnettest.FreePort(t), httpPort: linnettest.FreePort(t)}
	n.start()
	return n
}

// newInterpreter builds io.l5d.namerd from router config text, as a router
// does.
func newInterpreter(t *testing.T, ctx context.Context, port int, extra string) naming.Interpreter {
	return newInterpreterScope(t, ctx, port, extra, telemetry.Scope{})
}

func newInterpreterScope(t *testing.T, ctx context.Context, port int, extra string, scope telemetry.Scope) naming.Interpreter {
	t.Helper()
	return namerdtest.NewInterpreter(t, ctx, fmt.Sprintf("  kind: io.l5d.namerd\n  dst: /$/inet/127.0.0.1/%d\n  namespace: internal\n  retry: {baseSeconds: 1, maxSeconds: 1}\n%s", port, extra), scope)
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

	b := namerdtest.Record(t, in.Bind(nil, dtab.MustParsePath("/svc/web")))
	got := b.Await(t, "bind /svc/web", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if namerdtest.LeafID(got) != "/#/io.l5d.fs/web" || len(got.Value.Value.Residual) != 0 {
		t.Fatalf("bind /svc/web: %+v", got)
	}
	addr := namerdtest.Record[naming.Addr](t, got.Value.Value.Addr)
	addr.Await(t, "addresses of web", 5*time.Second, func(a naming.Addr) bool {
		return hostPorts(a) == "127.0.0.1:7001,127.0.0.1:7002"
	})

	// A dtab update made through the HTTP API reaches the router within 1s.
	start := time.Now()
	n.putDtab("internal", "/svc => /#/io.l5d.fs; /svc/web => /#/io.l5d.fs/web2")
	got = b.Await(t, "bind after dtab update", time.Second, func(a watch.Activity[naming.BoundTree]) bool { return namerdtest.LeafID(a) == "/#/io.l5d.fs/web2" })
	t.Logf("dtab update seen after %v", time.Since(start))
	addr2 := namerdtest.Record[naming.Addr](t, got.Value.Value.Addr)
	addr2.Await(t, "addresses of web2", 5*time.Second, func(a naming.Addr) bool { return hostPorts(a) == "127.0.0.1:7003" })

	// An address change in the fs namer.
	start = time.Now()
	namerdtest.WriteFile(t, n.dir, "web2", "127.0.0.1 7004\n127.0.0.1 7005\n")
	addr2.Await(t, "addresses after the file changed", time.Second, func(a naming.Addr) bool {
		return hostPorts(a) == "127.0.0.1:7004,127.0.0.1:7005"
	})
	t.Logf("address change seen after %v", time.Since(start))

	// namerd goes away: the router keeps the last state.
	n.Stop()
	time.Sleep(300 * time.Millisecond)
	if id := namerdtest.LeafID(b.Get()); id != "/#/io.l5d.fs/web2" {
		t.Fatalf("binding after namerd stopped: %+v", b.Get())
	}
	if hp := hostPorts(addr2.Get()); hp != "127.0.0.1:7004,127.0.0.1:7005" {
		t.Fatalf("addresses after namerd stopped: %s", hp)
	}
	// It comes back (with its initial dtab, the in-memory store is new):
	// the router reconnects and follows it again.
	n.start()
	b.Await(t, "bind after namerd restart", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return namerdtest.LeafID(a) == "/#/io.l5d.fs/web" })
	n.putDtab("internal", "/svc => /#/io.l5d.fs; /svc/web => /#/io.l5d.fs/web2")
	b.Await(t, "dtab update after restart", time.Second, func(a watch.Activity[naming.BoundTree]) bool { return namerdtest.LeafID(a) == "/#/io.l5d.fs/web2" })

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

	alt := namerdtest.Record(t, in.Bind(nil, dtab.MustParsePath("/svc/alt/x"))).Await(t, "alt", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if namerdtest.LeafID(alt) != "/#/io.l5d.fs/web" || alt.Value.Value.Residual.String() != "/x" {
		t.Fatalf("alt: %s", show(alt.Value))
	}
	split := namerdtest.Record(t, in.Bind(nil, dtab.MustParsePath("/svc/split"))).Await(t, "split", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if split.State != watch.Ok || show(split.Value) != "3.00*/#/io.l5d.fs/web & /#/io.l5d.fs/web2" {
		t.Fatalf("split: %v %s", split.State, show(split.Value))
	}
	neg := namerdtest.Record(t, in.Bind(nil, dtab.MustParsePath("/other/x"))).Await(t, "neg", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if neg.State != watch.Ok || neg.Value.Kind != dtab.Neg {
		t.Fatalf("unbound name: %v %s", neg.State, show(neg.Value))
	}
	// The router's own dtab (and a request's) travel with the bind.
	local := namerdtest.Record(t, in.Bind(dtab.MustParse("/other => /#/io.l5d.fs"), dtab.MustParsePath("/other/web2"))).Await(t, "local dtab", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if namerdtest.LeafID(local) != "/#/io.l5d.fs/web2" {
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
	b := namerdtest.Record(t, in.Bind(nil, dtab.MustParsePath("/svc/loop")))
	got := b.Await(t, "bind of a looping name", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State != watch.Pending })
	if got.State != watch.Failed || got.Err == nil || !strings.Contains(got.Err.Error(), "namerd") {
		t.Fatalf("bind of a looping name: %v %v %s", got.State, got.Err, show(got.Value))
	}
	t.Logf("failure: %v", got.Err)
	n.putDtab("internal", "/svc => /#/io.l5d.fs; /svc/loop => /#/io.l5d.fs/web")
	b.Await(t, "recovery", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return namerdtest.LeafID(a) == "/#/io.l5d.fs/web" })
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
