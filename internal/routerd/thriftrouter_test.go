package routerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	_ "github.com/linnet-mesh/linnet/internal/namer/fs" // io.l5d.fs
)

// ---- a real Thrift service (apache/thrift), written as the generator
// would: echo(1: string msg, 2: list<i64> nums, 3: map<string,bool> tags,
// 4: double ratio, 5: Inner inner) returns string, and oneway note(1:
// string msg). The arguments are varied so that a buffered (unframed)
// call exercises every kind of value the router walks to find its end.

type innerStruct struct {
	N    int32
	Blob []byte
}

func (s *innerStruct) Write(ctx context.Context, p thrift.TProtocol) error {
	_ = p.WriteStructBegin(ctx, "Inner")
	_ = p.WriteFieldBegin(ctx, "n", thrift.I32, 1)
	_ = p.WriteI32(ctx, s.N)
	_ = p.WriteFieldEnd(ctx)
	_ = p.WriteFieldBegin(ctx, "blob", thrift.STRING, 2)
	_ = p.WriteBinary(ctx, s.Blob)
	_ = p.WriteFieldEnd(ctx)
	_ = p.WriteFieldStop(ctx)
	return p.WriteStructEnd(ctx)
}

func (s *innerStruct) Read(ctx context.Context, p thrift.TProtocol) error {
	return readFields(ctx, p, func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.I32:
			s.N, err = p.ReadI32(ctx)
		case id == 2 && t == thrift.STRING:
			s.Blob, err = p.ReadBinary(ctx)
		default:
			return false, nil
		}
		return true, err
	})
}

type echoArgs struct {
	Msg   string
	Nums  []int64
	Tags  map[string]bool
	Ratio float64
	Inner *innerStruct
}

func (a *echoArgs) Write(ctx context.Context, p thrift.TProtocol) error {
	_ = p.WriteStructBegin(ctx, "echo_args")
	_ = p.WriteFieldBegin(ctx, "msg", thrift.STRING, 1)
	_ = p.WriteString(ctx, a.Msg)
	_ = p.WriteFieldEnd(ctx)
	if a.Nums != nil {
		_ = p.WriteFieldBegin(ctx, "nums", thrift.LIST, 2)
		_ = p.WriteListBegin(ctx, thrift.I64, len(a.Nums))
		for _, n := range a.Nums {
			_ = p.WriteI64(ctx, n)
		}
		_ = p.WriteListEnd(ctx)
		_ = p.WriteFieldEnd(ctx)
	}
	if a.Tags != nil {
		_ = p.WriteFieldBegin(ctx, "tags", thrift.MAP, 3)
		_ = p.WriteMapBegin(ctx, thrift.STRING, thrift.BOOL, len(a.Tags))
		for k, v := range a.Tags {
			_ = p.WriteString(ctx, k)
			_ = p.WriteBool(ctx, v)
		}
		_ = p.WriteMapEnd(ctx)
		_ = p.WriteFieldEnd(ctx)
	}
	_ = p.WriteFieldBegin(ctx, "ratio", thrift.DOUBLE, 4)
	_ = p.WriteDouble(ctx, a.Ratio)
	_ = p.WriteFieldEnd(ctx)
	if a.Inner != nil {
		_ = p.WriteFieldBegin(ctx, "inner", thrift.STRUCT, 5)
		_ = a.Inner.Write(ctx, p)
		_ = p.WriteFieldEnd(ctx)
	}
	_ = p.WriteFieldStop(ctx)
	return p.WriteStructEnd(ctx)
}

func (a *echoArgs) Read(ctx context.Context, p thrift.TProtocol) error {
	return readFields(ctx, p, func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRING:
			a.Msg, err = p.ReadString(ctx)
		case id == 2 && t == thrift.LIST:
			_, n, err := p.ReadListBegin(ctx)
			if err != nil {
				return true, err
			}
			for range n {
				v, err := p.ReadI64(ctx)
				if err != nil {
					return true, err
				}
				a.Nums = append(a.Nums, v)
			}
			return true, p.ReadListEnd(ctx)
		case id == 3 && t == thrift.MAP:
			_, _, n, err := p.ReadMapBegin(ctx)
			if err != nil {
				return true, err
			}
			a.Tags = map[string]bool{}
			for range n {
				k, err := p.ReadString(ctx)
				if err != nil {
					return true, err
				}
				if a.Tags[k], err = p.ReadBool(ctx); err != nil {
					return true, err
				}
			}
			return true, p.ReadMapEnd(ctx)
		case id == 4 && t == thrift.DOUBLE:
			a.Ratio, err = p.ReadDouble(ctx)
		case id == 5 && t == thrift.STRUCT:
			a.Inner = new(innerStruct)
			err = a.Inner.Read(ctx, p)
		default:
			return false, nil
		}
		return true, err
	})
}

// summary is what the backend answers: every argument, so that a reply
// proves the call arrived intact.
func (a *echoArgs) summary() string {
	var sum int64
	for _, n := range a.Nums {
		sum += n
	}
	on := 0
	for _, v := range a.Tags {
		if v {
			on++
		}
	}
	inner := "-"
	if a.Inner != nil {
		inner = fmt.Sprintf("%d/%d", a.Inner.N, len(a.Inner.Blob))
	}
	return fmt.Sprintf("%s sum=%d tags=%d/%d ratio=%g inner=%s", a.Msg, sum, on, len(a.Tags), a.Ratio, inner)
}

type echoResult struct{ Success *string }

func (r *echoResult) Write(ctx context.Context, p thrift.TProtocol) error {
	_ = p.WriteStructBegin(ctx, "echo_result")
	if r.Success != nil {
		_ = p.WriteFieldBegin(ctx, "success", thrift.STRING, 0)
		_ = p.WriteString(ctx, *r.Success)
		_ = p.WriteFieldEnd(ctx)
	}
	_ = p.WriteFieldStop(ctx)
	return p.WriteStructEnd(ctx)
}

func (r *echoResult) Read(ctx context.Context, p thrift.TProtocol) error {
	return readFields(ctx, p, func(id int16, t thrift.TType) (bool, error) {
		if id != 0 || t != thrift.STRING {
			return false, nil
		}
		s, err := p.ReadString(ctx)
		r.Success = &s
		return true, err
	})
}

// readFields reads a struct, calling field for each field; fields it
// does not take are skipped.
func readFields(ctx context.Context, p thrift.TProtocol, field func(id int16, t thrift.TType) (bool, error)) error {
	if _, err := p.ReadStructBegin(ctx); err != nil {
		return err
	}
	for {
		_, t, id, err := p.ReadFieldBegin(ctx)
		if err != nil {
			return err
		}
		if t == thrift.STOP {
			break
		}
		ok, err := field(id, t)
		if err != nil {
			return err
		}
		if !ok {
			if err := p.Skip(ctx, t); err != nil {
				return err
			}
		}
		if err := p.ReadFieldEnd(ctx); err != nil {
			return err
		}
	}
	return p.ReadStructEnd(ctx)
}

// ---- the backend: the library's transports and protocols on a listener
// the test controls (so that it can be killed with its connections).

type thriftBackend struct {
	name  string
	port  string
	calls atomic.Int64
	notes chan string
	ln    net.Listener

	mu    sync.Mutex
	conns map[net.Conn]bool
	dead  bool
}

func protocolFactory(proto string) thrift.TProtocolFactory {
	conf := &thrift.TConfiguration{}
	if proto == "compact" {
		return thrift.NewTCompactProtocolFactoryConf(conf)
	}
	return thrift.NewTBinaryProtocolFactoryConf(conf)
}

func wrapTransport(t thrift.TTransport, framed bool) thrift.TTransport {
	if framed {
		return thrift.NewTFramedTransportConf(t, &thrift.TConfiguration{})
	}
	return thrift.NewTBufferedTransport(t, 4096)
}

func startThriftBackend(t testing.TB, name string, framed bool, proto string) *thriftBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &thriftBackend{name: name, ln: ln, notes: make(chan string, 16), conns: map[net.Conn]bool{}}
	_, b.port, _ = net.SplitHostPort(ln.Addr().String())
	pf := protocolFactory(proto)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			if b.dead {
				b.mu.Unlock()
				nc.Close()
				return
			}
			b.conns[nc] = true
			b.mu.Unlock()
			go func() {
				defer nc.Close()
				prot := pf.GetProtocol(wrapTransport(thrift.NewTSocketFromConnConf(nc, &thrift.TConfiguration{}), framed))
				for {
					if _, err := b.Process(context.Background(), prot, prot); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(b.kill)
	return b
}

// kill stops the backend at once: its listener and every connection.
func (b *thriftBackend) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dead = true
	b.ln.Close()
	for c := range b.conns {
		c.Close()
	}
}

// Process implements thrift.TProcessor: echo and echo2 answer the
// summary of their arguments prefixed with the backend's name; note is
// oneway; any other method gets the library's UNKNOWN_METHOD exception.
func (b *thriftBackend) Process(ctx context.Context, in, out thrift.TProtocol) (bool, thrift.TException) {
	name, _, seq, err := in.ReadMessageBegin(ctx)
	if err != nil {
		return false, thrift.WrapTException(err)
	}
	switch name {
	case "echo", "echo2", "note":
		var args echoArgs
		if err := args.Read(ctx, in); err != nil {
			return false, thrift.WrapTException(err)
		}
		if err := in.ReadMessageEnd(ctx); err != nil {
			return false, thrift.WrapTException(err)
		}
		if name == "note" {
			b.notes <- b.name + ":" + args.Msg
			return true, nil
		}
		b.calls.Add(1)
		if args.Msg == "sleep" {
			time.Sleep(time.Second)
		}
		s := b.name + ":" + args.summary()
		_ = out.WriteMessageBegin(ctx, name, thrift.REPLY, seq)
		_ = (&echoResult{Success: &s}).Write(ctx, out)
		_ = out.WriteMessageEnd(ctx)
		return true, thrift.WrapTException(out.Flush(ctx))
	}
	_ = in.Skip(ctx, thrift.STRUCT)
	_ = in.ReadMessageEnd(ctx)
	exc := thrift.NewTApplicationException(thrift.UNKNOWN_METHOD, "unknown method "+name)
	_ = out.WriteMessageBegin(ctx, name, thrift.EXCEPTION, seq)
	_ = exc.Write(ctx, out)
	_ = out.WriteMessageEnd(ctx)
	return true, thrift.WrapTException(out.Flush(ctx))
}

func (b *thriftBackend) ProcessorMap() map[string]thrift.TProcessorFunction  { return nil }
func (b *thriftBackend) AddToProcessorMap(string, thrift.TProcessorFunction) {}

// ---- the client: the library's TStandardClient over a socket.

type thriftClient struct {
	*thrift.TStandardClient
	trans thrift.TTransport
}

func dialThrift(t testing.TB, addr string, framed bool, proto string) *thriftClient {
	t.Helper()
	sock := thrift.NewTSocketConf(addr, &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 10 * time.Second})
	trans := wrapTransport(sock, framed)
	if err := trans.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trans.Close() })
	prot := protocolFactory(proto).GetProtocol(trans)
	return &thriftClient{TStandardClient: thrift.NewTStandardClient(prot, prot), trans: trans}
}

func (c *thriftClient) call(method string, args *echoArgs) (string, error) {
	var res echoResult
	if _, err := c.Call(context.Background(), method, args, &res); err != nil {
		return "", err
	}
	if res.Success == nil {
		return "", errors.New("no result")
	}
	return *res.Success, nil
}

func richArgs(msg string) *echoArgs {
	return &echoArgs{Msg: msg, Nums: []int64{1, 2, 3, -4, 1 << 40}, Tags: map[string]bool{"a": true, "b": false, "c": true},
		Ratio: 0.25, Inner: &innerStruct{N: -7, Blob: make([]byte, 3000)}}
}

const richSummary = " sum=1099511627778 tags=2/3 ratio=0.25 inner=-7/3000"

func thriftMetrics(t *testing.T, p *Process) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.AdminAddr() + "/admin/metrics.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// ---- tests ----

// Each transport and protocol, from config text: a call is routed by the
// dtab to a real Thrift server and its reply comes back intact; a oneway
// call reaches the server and gets no reply (the next call on the same
// connection gets its own reply).
func TestThriftRouterFramingAndProtocols(t *testing.T) {
	cases := []struct {
		label, proto string
		framed       bool
	}{
		{"framedbinary", "binary", true},
		{"framedcompact", "compact", true},
		{"bufferedbinary", "binary", false},
		{"bufferedcompact", "compact", false},
	}
	var cfg strings.Builder
	cfg.WriteString("admin: {port: 0}\nrouters:\n")
	backends := map[string]*thriftBackend{}
	for _, c := range cases {
		b := startThriftBackend(t, c.label, c.framed, c.proto)
		backends[c.label] = b
		fmt.Fprintf(&cfg, `- protocol: thrift
  label: %s
  thriftProtocol: %s
  dtab: /svc => /$/inet/127.0.0.1/%s;
  servers: [{port: 0, thriftFramed: %v}]
  client: {thriftFramed: %v}
`, c.label, c.proto, b.port, c.framed, c.framed)
	}
	p, err := startFrom(t, cfg.String())
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.label, func(t *testing.T) {
			cl := dialThrift(t, p.ServerAddrs()[i], c.framed, c.proto)
			got, err := cl.call("echo", richArgs("hi"))
			if want := c.label + ":hi" + richSummary; err != nil || got != want {
				t.Fatalf("echo = %q, %v; want %q", got, err, want)
			}
			if _, err := cl.Call(context.Background(), "note", &echoArgs{Msg: "one-way"}, nil); err != nil {
				t.Fatalf("oneway: %v", err)
			}
			select {
			case n := <-backends[c.label].notes:
				if n != c.label+":one-way" {
					t.Errorf("note = %q", n)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the oneway call never reached the server")
			}
			got, err = cl.call("echo", &echoArgs{Msg: "after"})
			if want := c.label + ":after sum=0 tags=0/0 ratio=0 inner=-"; err != nil || got != want {
				t.Errorf("echo after oneway = %q, %v; want %q", got, err, want)
			}
			// The router stopped waiting for the oneway call's reply with
			// its endpoint connection in step, and used it again.
			b := backends[c.label]
			b.mu.Lock()
			n := len(b.conns)
			b.mu.Unlock()
			if n != 1 {
				t.Errorf("the server saw %d connections from the router; want 1", n)
			}
		})
	}
}

// With thriftMethodInDst, the method is the last segment of the name, so
// the dtab routes methods apart; a method no dentry names is answered
// with a TApplicationException that names the name, on a connection that
// stays usable; an endpoint that refuses connections is named too.
func TestThriftRouterMethodInDstAndErrors(t *testing.T) {
	one := startThriftBackend(t, "one", true, "binary")
	two := startThriftBackend(t, "two", true, "binary")
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	_, deadPort, _ := net.SplitHostPort(closed.Addr().String())
	closed.Close()
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: thrift
  thriftMethodInDst: true
  dtab: |
    /svc/echo  => /$/inet/127.0.0.1/`+one.port+`;
    /svc/echo2 => /$/inet/127.0.0.1/`+two.port+`;
    /svc/note  => /$/inet/127.0.0.1/`+deadPort+`;
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	cl := dialThrift(t, p.ServerAddrs()[0], true, "binary")
	if got, err := cl.call("echo", &echoArgs{Msg: "x"}); err != nil || !strings.HasPrefix(got, "one:x") {
		t.Errorf("echo = %q, %v; want one's reply", got, err)
	}
	if got, err := cl.call("echo2", &echoArgs{Msg: "y"}); err != nil || !strings.HasPrefix(got, "two:y") {
		t.Errorf("echo2 = %q, %v; want two's reply", got, err)
	}

	_, err = cl.call("missing", &echoArgs{Msg: "z"})
	var ae thrift.TApplicationException
	if !errors.As(err, &ae) {
		t.Fatalf("unknown name: err = %v (%T); want a TApplicationException", err, err)
	}
	if ae.TypeId() != thrift.INTERNAL_ERROR || !strings.Contains(ae.Error(), "Unable to route request!") || !strings.Contains(ae.Error(), "/svc/missing") {
		t.Errorf("unknown name: exception type %d %q; want INTERNAL_ERROR naming /svc/missing", ae.TypeId(), ae.Error())
	}
	// The exception answered the call: the connection is in step.
	if got, err := cl.call("echo", &echoArgs{Msg: "again"}); err != nil || !strings.HasPrefix(got, "one:again") {
		t.Errorf("echo after exception = %q, %v", got, err)
	}

	// A two-way call to an endpoint that refuses connections.
	_, err = cl.call("note", &echoArgs{Msg: "refused"})
	if !errors.As(err, &ae) || !strings.Contains(ae.Error(), "127.0.0.1:"+deadPort) || !strings.Contains(ae.Error(), "connection refused") {
		t.Errorf("refused endpoint: err = %v; want an exception naming 127.0.0.1:%s, connection refused", err, deadPort)
	}
}

// Two endpoints of one replica set (an io.l5d.fs file) share the calls;
// once one is killed, the calls that follow all succeed on the other
// (connections found closed are dropped, refused connects are requeued,
// and failure accrual takes the dead endpoint out). The router's metrics
// count it all under rt/<label>/.
func TestThriftRouterBalancesFailsOverAndCounts(t *testing.T) {
	a := startThriftBackend(t, "a", true, "compact")
	b := startThriftBackend(t, "b", true, "compact")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pair"), []byte("127.0.0.1 "+a.port+"\n127.0.0.1 "+b.port+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := startFrom(t, `
admin: {port: 0}
namers:
- kind: io.l5d.fs
  rootDir: `+dir+`
routers:
- protocol: thrift
  label: lb
  thriftProtocol: compact
  dtab: /svc => /#/io.l5d.fs/pair;
  servers: [{port: 0}]
  client:
    failureAccrual: {kind: io.l5d.consecutiveFailures, failures: 2}
`)
	if err != nil {
		t.Fatal(err)
	}
	clients := []*thriftClient{
		dialThrift(t, p.ServerAddrs()[0], true, "compact"),
		dialThrift(t, p.ServerAddrs()[0], true, "compact"),
	}
	const n = 40
	for i := range n {
		if _, err := clients[i%2].call("echo", &echoArgs{Msg: "m"}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if a.calls.Load() == 0 || b.calls.Load() == 0 || a.calls.Load()+b.calls.Load() != n {
		t.Fatalf("calls a=%d b=%d; want both used, %d in all", a.calls.Load(), b.calls.Load(), n)
	}

	b.kill()
	before := a.calls.Load()
	for i := range n {
		got, err := clients[i%2].call("echo", &echoArgs{Msg: "m"})
		if err != nil || !strings.HasPrefix(got, "a:") {
			t.Fatalf("call %d after b was killed = %q, %v; want a's reply", i, got, err)
		}
	}
	if got := a.calls.Load() - before; got != n {
		t.Errorf("a served %d of the %d calls after b was killed", got, n)
	}

	_, port, _ := net.SplitHostPort(p.ServerAddrs()[0])
	m := thriftMetrics(t, p)
	server := "rt/lb/server/127.0.0.1/" + port + "/"
	for key, want := range map[string]float64{
		server + "requests":                      2 * n,
		server + "success":                       2 * n,
		"rt/lb/service/svc/requests":             2 * n,
		"rt/lb/service/svc/success":              2 * n,
		"rt/lb/client/#/io.l5d.fs/pair/requests": 2 * n,
		"rt/lb/client/#/io.l5d.fs/pair/success":  2 * n,
	} {
		if m[key] != want {
			t.Errorf("%s = %v; want %v", key, m[key], want)
		}
	}
	if m["rt/lb/client/#/io.l5d.fs/pair/failure_accrual/removals"] < 1 {
		t.Errorf("failure_accrual/removals = %v; want the killed endpoint removed", m["rt/lb/client/#/io.l5d.fs/pair/failure_accrual/removals"])
	}
}

// Failures are counted as such: a call to a name that routes nowhere is
// a failure of the server and of the service.
func TestThriftRouterCountsFailures(t *testing.T) {
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: thrift
  label: nowhere
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	cl := dialThrift(t, p.ServerAddrs()[0], true, "binary")
	for range 3 {
		if _, err := cl.call("echo", &echoArgs{}); err == nil {
			t.Fatal("a call with an empty dtab succeeded")
		}
	}
	_, port, _ := net.SplitHostPort(p.ServerAddrs()[0])
	m := thriftMetrics(t, p)
	server := "rt/nowhere/server/127.0.0.1/" + port + "/"
	if m[server+"requests"] != 3 || m[server+"failures"] != 3 || m[server+"success"] != 0 {
		t.Errorf("server requests/failures/success = %v/%v/%v; want 3/3/0", m[server+"requests"], m[server+"failures"], m[server+"success"])
	}
	if m["rt/nowhere/service/svc/failures"] != 3 {
		t.Errorf("service failures = %v; want 3", m["rt/nowhere/service/svc/failures"])
	}
}

func TestThriftRouterConfigDefaults(t *testing.T) {
	c, err := LoadConfig([]byte("routers:\n- protocol: thrift\n  servers: [{}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Routers[0].Value.(*ThriftRouter)
	s := tr.Servers[0]
	if tr.Label != "thrift" || tr.DstPrefix.Text != "/svc" || tr.ThriftMethodInDst || tr.ThriftProtocol != "binary" ||
		s.Port != 4114 || !s.ThriftFramed || !tr.Client.Global.ThriftFramed || tr.Client.Global.AttemptTTwitterUpgrade {
		t.Errorf("defaults: label %q dstPrefix %q methodInDst %v protocol %q port %d server framed %v client framed %v ttwitter %v",
			tr.Label, tr.DstPrefix.Text, tr.ThriftMethodInDst, tr.ThriftProtocol, s.Port, s.ThriftFramed, tr.Client.Global.ThriftFramed, tr.Client.Global.AttemptTTwitterUpgrade)
	}
	if tr.thriftProtocol("compact").String() != "compact" || tr.thriftProtocol("").String() != "binary" {
		t.Error("server/client thriftProtocol does not override the router's")
	}
}

func TestThriftRouterConfigErrors(t *testing.T) {
	const r = "routers:\n- protocol: thrift\n  servers: [{}]\n"
	tests := []struct{ name, text, want string }{
		{"protocol", r + "  thriftProtocol: json\n", `routers[0].thriftProtocol: "json" is not a thrift protocol (binary or compact) (line 4)`},
		{"server protocol", "routers:\n- protocol: thrift\n  servers: [{thriftProtocol: tjson}]\n", `routers[0].servers[0].thriftProtocol: "tjson" is not a thrift protocol (binary or compact)`},
		{"framed type", "routers:\n- protocol: thrift\n  servers: [{thriftFramed: maybe}]\n", "routers[0].servers[0].thriftFramed:"},
		{"identifier", r + "  identifier: {kind: io.l5d.header.token}\n", "routers[0].identifier: `identifier` does not apply to thrift routers"},
		{"classifier", r + "  service: {responseClassifier: {kind: io.l5d.http.retryableRead5XX}}\n", "routers[0].service.responseClassifier: `responseClassifier` does not apply to thrift routers"},
		{"http key", r + "  maxHeadersKB: 8\n", "routers[0].maxHeadersKB: `maxHeadersKB` applies to protocol http routers, not thrift (line 4)"},
		{"thrift key on http", "routers:\n- protocol: http\n  servers: [{}]\n  thriftMethodInDst: true\n", "`thriftMethodInDst` applies to protocol thrift routers, not http"},
		{"per prefix protocol", r + "  client:\n    kind: io.l5d.static\n    configs:\n    - prefix: /$/inet\n      thriftProtocol: json\n",
			`routers[0].client.configs[0].thriftProtocol: "json" is not a thrift protocol (binary or compact)`},
		{"unknown key", r + "  thriftMethodInDest: true\n", `unknown key "thriftMethodInDest"; did you mean "thriftMethodInDst"?`},
		{"mux", "routers:\n- protocol: mux\n  servers: [{}]\n", `protocol "mux" is a Linkerd 1.x option not supported by this version`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig([]byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

// A thrift router's ignored options are warned about like other
// routers' (linnet check prints them).
func TestThriftRouterWarnings(t *testing.T) {
	c, err := LoadConfig([]byte("routers:\n- protocol: thrift\n  servers: [{timeoutMs: 5}]\n  client: {hostConnectionPool: {maxSize: 3}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ws := strings.Join(Warnings(c), "\n")
	for _, want := range []string{"servers[0].timeoutMs is not supported yet", "hostConnectionPool minSize, maxSize and maxWaiters are not supported on thrift routers"} {
		if !strings.Contains(ws, want) {
			t.Errorf("warnings %q lack %q", ws, want)
		}
	}
}

// service.totalTimeoutMs bounds a call: a slow endpoint's caller gets an
// exception naming the timeout in time, and its connection stays usable.
func TestThriftRouterTotalTimeout(t *testing.T) {
	be := startThriftBackend(t, "slow", true, "binary")
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: thrift
  dtab: /svc => /$/inet/127.0.0.1/`+be.port+`;
  servers: [{port: 0}]
  service: {totalTimeoutMs: 100}
`)
	if err != nil {
		t.Fatal(err)
	}
	cl := dialThrift(t, p.ServerAddrs()[0], true, "binary")
	start := time.Now()
	_, err = cl.call("echo", &echoArgs{Msg: "sleep"})
	var ae thrift.TApplicationException
	if !errors.As(err, &ae) || !strings.Contains(ae.Error(), "totalTimeoutMs") {
		t.Errorf("slow call: %v; want an exception naming totalTimeoutMs", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("the exception came after %v; want about 100ms", d)
	}
	if got, err := cl.call("echo", &echoArgs{Msg: "quick"}); err != nil || !strings.HasPrefix(got, "slow:quick") {
		t.Errorf("next call = %q, %v", got, err)
	}
}

// BenchmarkThriftRouterCall measures one framed binary call through a
// router from config text (b.N calls on one client connection), against
// the same call made to the server directly (sub-benchmark direct).
func BenchmarkThriftRouterCall(b *testing.B) {
	be := startThriftBackend(b, "be", true, "binary")
	cfg, err := LoadConfig([]byte(`
admin: {port: 0}
routers:
- protocol: thrift
  dtab: /svc => /$/inet/127.0.0.1/` + be.port + `;
  servers: [{port: 0}]
`))
	if err != nil {
		b.Fatal(err)
	}
	p, err := Start(context.Background(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	for _, bc := range []struct{ name, addr string }{{"router", p.ServerAddrs()[0]}, {"direct", "127.0.0.1:" + be.port}} {
		b.Run(bc.name, func(b *testing.B) {
			cl := dialThrift(b, bc.addr, true, "binary")
			args := richArgs("bench")
			b.ResetTimer()
			for range b.N {
				if _, err := cl.call("echo", args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
