package mesh

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest/inproc"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
	"github.com/linnet-mesh/linnet/internal/watch"

	_ "github.com/linnet-mesh/linnet/internal/namer/fs"
	_ "github.com/linnet-mesh/linnet/internal/storage/memory"
)

// Every stream, watch, connection and server goroutine ends with its
// context or server.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// namerdProc is a real namerd with the in-memory store, an io.l5d.fs
// namer over dir, the io.l5d.mesh interface and the HTTP controller, on
// loopback ports that survive restarts.
type namerdProc struct {
	*inproc.Namerd
	t                  *testing.T
	dir                string
	meshPort, httpPort int
}

func (n *namerdProc) start(defaultDtab string) {
	n.t.Helper()
	n.Start(fmt.Sprintf(`admin: {ip: 127.0.0.1, port: 0}
storage:
  kind: io.l5d.inMemory
  namespaces:
    default: %q
namers:
- kind: io.l5d.fs
  rootDir: %s
interfaces:
- kind: io.l5d.mesh
  ip: 127.0.0.1
  port: %d
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: %d
`, defaultDtab, n.dir, n.meshPort, n.httpPort))
}

func (n *namerdProc) putDtab(ns, text string) { namerdtest.PutDtab(n.t, n.httpPort, ns, text) }

const baseDtab = "/svc=>/#/io.l5d.fs"

func startNamerd(t *testing.T) *namerdProc {
	dir := t.TempDir()
	namerdtest.WriteFile(t, dir, "web", "127.0.0.1 7001\n127.0.0.1 7002\n")
	namerdtest.WriteFile(t, dir, "web2", "127.0.0.1 7003\n")
	n := &namerdProc{Namerd: inproc.New(t), t: t, dir: dir, meshPort: linnettest.FreePort(t), httpPort: linnettest.FreePort(t)}
	n.start(baseDtab)
	return n
}

// newInterpreter builds io.l5d.mesh from router config text, as a router
// does.
func newInterpreter(t *testing.T, ctx context.Context, port int, scope telemetry.Scope) naming.Interpreter {
	return newInterpreterExtra(t, ctx, port, scope, "")
}

// newInterpreterExtra adds extra (indented interpreter keys) to the block.
func newInterpreterExtra(t *testing.T, ctx context.Context, port int, scope telemetry.Scope, extra string) naming.Interpreter {
	t.Helper()
	return namerdtest.NewInterpreter(t, ctx, fmt.Sprintf("  kind: io.l5d.mesh\n  dst: /$/inet/127.0.0.1/%d\n  root: /default\n  retry: {baseSeconds: 1, maxSeconds: 1}\n%s", port, extra), scope)
}

func hostPorts(a naming.Addr) []string {
	var out []string
	for _, x := range a.Addrs {
		out = append(out, x.HostPort())
	}
	slices.Sort(out)
	return out
}

func isLeaf(id string) func(watch.Activity[naming.BoundTree]) bool {
	return func(a watch.Activity[naming.BoundTree]) bool { return namerdtest.LeafID(a) == id }
}

func hasAddrs(want ...string) func(naming.Addr) bool {
	return func(a naming.Addr) bool { return a.State == naming.AddrBound && slices.Equal(hostPorts(a), want) }
}

// A router binds through a real namerd over io.l5d.mesh; a dtab change in
// namerd's store, a request dtab, and a namer's address change all reach
// it through the streams.
func TestInterpreterFollowsNamerd(t *testing.T) {
	n := startNamerd(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := telemetry.NewRegistry()
	in := newInterpreter(t, ctx, n.meshPort, reg.Scope())

	b := namerdtest.Record(t, in.Bind(nil, dtab.MustParsePath("/svc/web")))
	got := b.Await(t, "first binding", 5*time.Second, isLeaf("/#/io.l5d.fs/web"))
	addrs := namerdtest.Record(t, got.Value.Value.Addr)
	addrs.Await(t, "addresses of web", 5*time.Second, hasAddrs("127.0.0.1:7001", "127.0.0.1:7002"))

	// The namer's answer changes: the replicas stream pushes it.
	namerdtest.WriteFile(t, n.dir, "web", "127.0.0.1 7009\n")
	addrs.Await(t, "changed addresses of web", 5*time.Second, hasAddrs("127.0.0.1:7009"))

	// namerctl changes the namespace dtab: the bind stream pushes it.
	n.putDtab("default", baseDtab+"; /svc/web => /#/io.l5d.fs/web2")
	b.Await(t, "binding after the dtab change", 5*time.Second, isLeaf("/#/io.l5d.fs/web2"))

	// A request's local dtab travels with the bind request.
	local := namerdtest.Record(t, in.Bind(dtab.MustParse("/svc/other => /svc/web2"), dtab.MustParsePath("/svc/other")))
	local.Await(t, "binding through a local dtab", 5*time.Second, isLeaf("/#/io.l5d.fs/web2"))

	// A name namerd cannot bind is negative, not an error.
	neg := namerdtest.Record(t, in.Bind(nil, dtab.MustParsePath("/nope/x")))
	neg.Await(t, "negative binding", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool {
		return a.State == watch.Ok && a.Value.Kind == dtab.Neg
	})

	// The admin delegator explains through namerd.
	ex, ok := in.(naming.Explainer)
	if !ok {
		t.Fatal("the interpreter is not a naming.Explainer")
	}
	ectx, ecancel := context.WithTimeout(ctx, 5*time.Second)
	defer ecancel()
	node, err := ex.Explain(ectx, nil, dtab.MustParsePath("/svc/web"))
	if err != nil {
		t.Fatal(err)
	}
	js := string(naming.MarshalDelegateJSON(node))
	for _, want := range []string{`"path":"/svc/web"`, `"prefix":"/svc/web","dst":"/#/io.l5d.fs/web2"`, `"id":"/#/io.l5d.fs/web2"`, `127.0.0.1`, `7003`} {
		if !strings.Contains(js, want) {
			t.Errorf("delegation %s lacks %s", js, want)
		}
	}

	var counted int64
	reg.Each(func(m telemetry.Metric) {
		if m.Name == "interpreter/io.l5d.mesh/bind/success" {
			counted = m.Counter.Value()
		}
	})
	if counted == 0 {
		t.Error("interpreter/io.l5d.mesh/bind/success was not counted")
	}
}

// namerd stops: the router keeps the bound tree and addresses it has.
// namerd comes back (with a different dtab): the streams reconnect and the
// router follows.
func TestInterpreterSurvivesNamerdRestart(t *testing.T) {
	n := startNamerd(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := newInterpreter(t, ctx, n.meshPort, telemetry.Scope{})
	b := namerdtest.Record(t, in.Bind(nil, dtab.MustParsePath("/svc/web")))
	got := b.Await(t, "first binding", 5*time.Second, isLeaf("/#/io.l5d.fs/web"))
	addrs := namerdtest.Record(t, got.Value.Value.Addr)
	addrs.Await(t, "addresses", 5*time.Second, hasAddrs("127.0.0.1:7001", "127.0.0.1:7002"))

	n.Stop()
	time.Sleep(1500 * time.Millisecond) // streams fail and are retried meanwhile
	if id := namerdtest.LeafID(b.Get()); id != "/#/io.l5d.fs/web" {
		t.Fatalf("binding while namerd is down: %+v", b.Get())
	}
	if a := addrs.Get(); !hasAddrs("127.0.0.1:7001", "127.0.0.1:7002")(a) {
		t.Fatalf("addresses while namerd is down: %+v", a)
	}

	n.start(baseDtab + "; /svc/web => /#/io.l5d.fs/web2")
	b.Await(t, "binding after namerd restarted", 10*time.Second, isLeaf("/#/io.l5d.fs/web2"))
	// The replicas stream of the old leaf, still watched, reconnected too.
	namerdtest.WriteFile(t, n.dir, "web", "127.0.0.1 7005\n")
	addrs.Await(t, "addresses after namerd restarted", 10*time.Second, hasAddrs("127.0.0.1:7005"))
}

// An error namerd reports about the request itself fails a binding that
// never succeeded (instead of leaving it pending until a timeout), and the
// stream keeps being retried.
func TestReportedErrorFailsBinding(t *testing.T) {
	n := startNamerd(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var d net.Dialer
	in := NewInterpreter(ctx, InterpreterOptions{
		Namespace: "", // an empty root element: namerd refuses it
		Dial: func(ctx context.Context) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", n.meshPort))
		},
		RetryBase: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	})
	b := namerdtest.Record(t, in.Bind(nil, dtab.MustParsePath("/svc/web")))
	got := b.Await(t, "failed binding", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return a.State == watch.Failed })
	if !strings.Contains(got.Err.Error(), "Invalid root") {
		t.Fatalf("error %v, want namerd's Invalid root", got.Err)
	}
}

// meshConn is a raw gRPC client of the interface, for the service-level
// checks.
func meshConn(t *testing.T, port int) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func invoke(t *testing.T, conn *grpc.ClientConn, method string, req, rsp Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return conn.Invoke(ctx, method, req, rsp, callCodec)
}

func TestServices(t *testing.T) {
	n := startNamerd(t)
	conn := meshConn(t, n.meshPort)
	root := path("default")

	var bt BoundTreeRsp
	if err := invoke(t, conn, MethodGetBoundTree, &BindReq{Root: root, Name: path("svc", "web", "x")}, &bt); err != nil {
		t.Fatal(err)
	}
	want := &NameTree{Kind: TreeLeaf, Leaf: &Leaf{ID: path("#", "io.l5d.fs", "web"), Residual: path("x")}}
	if got, w := Marshal(&bt), Marshal(&BoundTreeRsp{Tree: want}); string(got) != string(w) {
		t.Errorf("GetBoundTree: %+v", bt.Tree)
	}

	var reps Replicas
	if err := invoke(t, conn, MethodGetReplicas, &ReplicasReq{ID: path("#", "io.l5d.fs", "web")}, &reps); err != nil {
		t.Fatal(err)
	}
	if a := addrFromReplicas(&reps); !hasAddrs("127.0.0.1:7001", "127.0.0.1:7002")(a) {
		t.Errorf("GetReplicas: %+v", reps)
	}
	if err := invoke(t, conn, MethodGetReplicas, &ReplicasReq{}, &reps); err != nil || reps.Kind != ReplicasFailed || reps.Message != "No ID provided" {
		t.Errorf("GetReplicas without id: %+v, %v", reps, err)
	}
	if err := invoke(t, conn, MethodGetReplicas, &ReplicasReq{ID: path("#", "io.l5d.fs", "absent")}, &reps); err != nil || reps.Kind != ReplicasNeg {
		t.Errorf("GetReplicas of an absent name: %+v, %v", reps, err)
	}

	var dr DtabRsp
	if err := invoke(t, conn, MethodGetDtab, &DtabReq{Root: root}, &dr); err != nil {
		t.Fatal(err)
	}
	if d, err := dtabFromWire(dr.Dtab.Dtab); err != nil || d.String() != baseDtab || dr.Dtab.Version == nil {
		t.Errorf("GetDtab: %v %v %+v", d, err, dr.Dtab)
	}

	var dt DelegateTreeRsp
	if err := invoke(t, conn, MethodGetDelegateTree, &DelegateTreeReq{Root: root, Tree: nameTreeToWire(dtab.LeafTree(dtab.MustParsePath("/svc/web")))}, &dt); err != nil {
		t.Fatal(err)
	}
	if dt.Tree == nil || dt.Tree.Kind != TreeDelegate || dt.Tree.Delegate.Kind != TreeLeaf || dt.Tree.Dentry == nil {
		t.Errorf("GetDelegateTree: %+v", dt.Tree)
	}

	var sd ShowDtabRsp
	var rd ReadDtabRsp
	if err := invoke(t, conn, MethodReadDtab, &ReadDtabReq{Text: "/a=>/b|/c;/d/*=>/e"}, &rd); err != nil {
		t.Fatal(err)
	}
	if err := invoke(t, conn, MethodShowDtab, &ShowDtabReq{Dtab: rd.Dtab}, &sd); err != nil || sd.Text != "/a=>/b | /c;/d/*=>/e" {
		t.Errorf("ReadDtab then ShowDtab: %q %v", sd.Text, err)
	}
	var rp ReadPathRsp
	var sp ShowPathRsp
	if err := invoke(t, conn, MethodReadPath, &ReadPathReq{Text: "/a/b"}, &rp); err != nil {
		t.Fatal(err)
	}
	if err := invoke(t, conn, MethodShowPath, &ShowPathReq{Path: rp.Path}, &sp); err != nil || sp.Text != "/a/b" {
		t.Errorf("ReadPath then ShowPath: %q %v", sp.Text, err)
	}

	// Errors carry Linkerd's status codes and messages.
	for _, tc := range []struct {
		name   string
		method string
		req    Message
		rsp    Message
		code   codes.Code
		msg    string
	}{
		{"no root", MethodGetBoundTree, &BindReq{Name: path("svc", "web")}, new(BoundTreeRsp), codes.InvalidArgument, "No namespace specified"},
		{"two-element root", MethodGetBoundTree, &BindReq{Root: path("a", "b"), Name: path("svc")}, new(BoundTreeRsp), codes.InvalidArgument, "Invalid root: `/a/b` must have exactly one segment"},
		{"no name", MethodGetBoundTree, &BindReq{Root: root}, new(BoundTreeRsp), codes.NotFound, "No name given"},
		{"unknown namespace", MethodGetDtab, &DtabReq{Root: path("nope")}, new(DtabRsp), codes.NotFound, "Root not found"},
		{"bad dtab text", MethodReadDtab, &ReadDtabReq{Text: "/a=>"}, new(ReadDtabRsp), codes.InvalidArgument, ""},
		{"bad dentry", MethodGetBoundTree, &BindReq{Root: root, Name: path("svc"), Dtab: &Dtab{Dentries: []Dentry{{}}}}, new(BoundTreeRsp), codes.InvalidArgument, "Invalid dtab"},
		{"a tree to delegate", MethodGetDelegateTree, &DelegateTreeReq{Root: root, Tree: &NameTree{Kind: TreeNeg}}, new(DelegateTreeRsp), codes.Unimplemented, "single path"},
	} {
		err := invoke(t, conn, tc.method, tc.req, tc.rsp)
		st := status.Convert(err)
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("%s: got %v, want %v %q", tc.name, err, tc.code, tc.msg)
		}
	}
}

// StreamDtab pushes every change of the namespace, once per change.
func TestStreamDtab(t *testing.T) {
	n := startNamerd(t)
	conn := meshConn(t, n.meshPort)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, MethodStreamDtab, callCodec)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&DtabReq{Root: path("default")}); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	next := func() string {
		var rsp DtabRsp
		if err := st.RecvMsg(&rsp); err != nil {
			t.Fatal(err)
		}
		d, err := dtabFromWire(rsp.Dtab.Dtab)
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	if got := next(); got != baseDtab {
		t.Fatalf("first: %q", got)
	}
	n.putDtab("default", "/svc=>/#/io.l5d.fs/web2")
	if got := next(); got != "/svc=>/#/io.l5d.fs/web2" {
		t.Fatalf("after PUT: %q", got)
	}
}

// Shutting namerd down ends open streams promptly (with UNAVAILABLE, so
// routers reconnect) instead of holding the shutdown.
func TestShutdownEndsStreams(t *testing.T) {
	n := startNamerd(t)
	conn := meshConn(t, n.meshPort)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, MethodStreamBoundTree, callCodec)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&BindReq{Root: path("default"), Name: path("svc", "web")}); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	var rsp BoundTreeRsp
	if err := st.RecvMsg(&rsp); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n.Stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("stop took %v with a stream open", d)
	}
	if err := st.RecvMsg(&rsp); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream after shutdown: %v, want UNAVAILABLE", err)
	}
}

func TestConfigErrors(t *testing.T) {
	type router struct {
		Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
	}
	for _, tc := range []struct{ text, want string }{
		{"interpreter: {kind: io.l5d.mesh}", "dst"},
		{"interpreter: {kind: io.l5d.mesh, dst: nope}", "interpreter.dst"},
		{"interpreter: {kind: io.l5d.mesh, dst: /$/inet/h/1, root: /a/b}", "interpreter.root"},
		{"interpreter: {kind: io.l5d.mesh, dst: /$/inet/h/1, retry: {baseSeconds: 0, maxSeconds: 5}}", "interpreter.retry"},
		{"interpreter: {kind: io.l5d.mesh, dst: /$/inet/h/1, initialStreamWindowSizeKB: 10}", "interpreter.initialStreamWindowSizeKB"},
		{"interpreter: {kind: io.l5d.mesh, dst: /$/inet/h/1, failureThreshold: {minPeriodMs: 0}}", "interpreter.failureThreshold.minPeriodMs"},
		{"interpreter: {kind: io.l5d.mesh, dst: /$/inet/h/1, tls: {}}", "commonName"},
		{"interpreter: {kind: io.l5d.mesh, dst: /$/inet/h/1, namespace: x}", "namespace"},
	} {
		var c router
		err := config.Load([]byte(tc.text), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q): %v, want an error mentioning %q", tc.text, err, tc.want)
		}
	}
	var c router
	if err := config.Load([]byte("interpreter: {kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/4321}"), &c); err != nil {
		t.Fatal(err)
	}
	ic := c.Interpreter.Value.(*InterpreterConfig)
	if ic.root != "default" || ic.Retry != (RetryConfig{1, 600}) || ic.InitialStreamWindowSizeKB != 1024 {
		t.Errorf("interpreter defaults: %+v", ic)
	}

	for _, tc := range []struct{ text, want string }{
		{"storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.mesh\n  ip: localhost\n", "interfaces[0].ip"},
		{"storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.mesh\n  port: 70000\n", "interfaces[0].port"},
		{"storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.mesh\n  bogus: 1\n", "bogus"},
	} {
		var cfg namerd.Config
		err := config.Load([]byte(tc.text), &cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q): %v, want an error mentioning %q", tc.text, err, tc.want)
		}
	}
	var cfg namerd.Config
	if err := config.Load([]byte("storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.mesh\n  h2AccessLog: access.log\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if a := cfg.Interfaces[0].Value.Common().Addr(); a != "127.0.0.1:4321" {
		t.Errorf("interface default address %s, want 127.0.0.1:4321", a)
	}
}
