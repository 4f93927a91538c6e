package routerd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
)

// Finagle's TTwitter protocol, spoken with the apache/thrift library's
// protocol objects (there is no Finagle in Go): the upgrade call, then a
// RequestHeader before each call and a ResponseHeader before each reply
// (tracing.thrift).

const canTraceMethod = "__can__finagle__trace__v3__"

// ttHeader is the part of a RequestHeader the tests set and check.
type ttHeader struct {
	traceID, spanID, parentID int64
	hasParent                 bool
	sampled                   *bool
	clientID                  string
	dest                      string
	delegations               [][2]string // src, dst
}

func writeTTHeader(ctx context.Context, p thrift.TProtocol, h ttHeader) {
	i64 := func(id int16, v int64) {
		_ = p.WriteFieldBegin(ctx, "", thrift.I64, id)
		_ = p.WriteI64(ctx, v)
		_ = p.WriteFieldEnd(ctx)
	}
	str := func(id int16, v string) {
		_ = p.WriteFieldBegin(ctx, "", thrift.STRING, id)
		_ = p.WriteString(ctx, v)
		_ = p.WriteFieldEnd(ctx)
	}
	_ = p.WriteStructBegin(ctx, "RequestHeader")
	i64(1, h.traceID)
	i64(2, h.spanID)
	if h.hasParent {
		i64(3, h.parentID)
	}
	if h.sampled != nil {
		_ = p.WriteFieldBegin(ctx, "", thrift.BOOL, 5)
		_ = p.WriteBool(ctx, *h.sampled)
		_ = p.WriteFieldEnd(ctx)
	}
	if h.clientID != "" {
		_ = p.WriteFieldBegin(ctx, "", thrift.STRUCT, 6)
		_ = p.WriteStructBegin(ctx, "ClientId")
		str(1, h.clientID)
		_ = p.WriteFieldStop(ctx)
		_ = p.WriteStructEnd(ctx)
		_ = p.WriteFieldEnd(ctx)
	}
	_ = p.WriteFieldBegin(ctx, "", thrift.LIST, 8)
	_ = p.WriteListBegin(ctx, thrift.STRUCT, 0)
	_ = p.WriteListEnd(ctx)
	_ = p.WriteFieldEnd(ctx)
	if h.dest != "" {
		str(9, h.dest)
	}
	if h.delegations != nil {
		_ = p.WriteFieldBegin(ctx, "", thrift.LIST, 10)
		_ = p.WriteListBegin(ctx, thrift.STRUCT, len(h.delegations))
		for _, d := range h.delegations {
			_ = p.WriteStructBegin(ctx, "Delegation")
			str(1, d[0])
			str(2, d[1])
			_ = p.WriteFieldStop(ctx)
			_ = p.WriteStructEnd(ctx)
		}
		_ = p.WriteListEnd(ctx)
		_ = p.WriteFieldEnd(ctx)
	}
	_ = p.WriteFieldStop(ctx)
	_ = p.WriteStructEnd(ctx)
}

func readTTHeader(ctx context.Context, p thrift.TProtocol) (ttHeader, error) {
	var h ttHeader
	err := readFields(ctx, p, func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.I64:
			h.traceID, err = p.ReadI64(ctx)
		case id == 2 && t == thrift.I64:
			h.spanID, err = p.ReadI64(ctx)
		case id == 3 && t == thrift.I64:
			h.parentID, err = p.ReadI64(ctx)
			h.hasParent = true
		case id == 5 && t == thrift.BOOL:
			var v bool
			v, err = p.ReadBool(ctx)
			h.sampled = &v
		case id == 6 && t == thrift.STRUCT:
			err = readFields(ctx, p, func(id int16, t thrift.TType) (bool, error) {
				if id != 1 || t != thrift.STRING {
					return false, nil
				}
				var err error
				h.clientID, err = p.ReadString(ctx)
				return true, err
			})
		case id == 9 && t == thrift.STRING:
			h.dest, err = p.ReadString(ctx)
		case id == 10 && t == thrift.LIST:
			var n int
			if _, n, err = p.ReadListBegin(ctx); err != nil {
				return true, err
			}
			h.delegations = [][2]string{}
			for range n {
				var d [2]string
				err = readFields(ctx, p, func(id int16, t thrift.TType) (bool, error) {
					if (id != 1 && id != 2) || t != thrift.STRING {
						return false, nil
					}
					var err error
					d[id-1], err = p.ReadString(ctx)
					return true, err
				})
				if err != nil {
					return true, err
				}
				h.delegations = append(h.delegations, d)
			}
			err = p.ReadListEnd(ctx)
		default:
			return false, nil
		}
		return true, err
	})
	return h, err
}

// writeEmptyStruct writes a struct without fields (ConnectionOptions,
// UpgradeReply, an empty ResponseHeader).
func writeEmptyStruct(ctx context.Context, p thrift.TProtocol) {
	_ = p.WriteStructBegin(ctx, "")
	_ = p.WriteFieldStop(ctx)
	_ = p.WriteStructEnd(ctx)
}

// ttCall is one call a TTwitter backend received.
type ttCall struct {
	method string
	header ttHeader
}

// ttBackend is a TTwitter server (framed, binary): it accepts the
// upgrade, then reads a RequestHeader before each call and answers echo
// with "<name>:<msg>" after an empty ResponseHeader.
type ttBackend struct {
	name, port string
	ln         net.Listener
	mu         sync.Mutex
	calls      []ttCall
	upgrades   int
}

func startTTBackend(t *testing.T, name string) *ttBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &ttBackend{name: name, ln: ln}
	_, b.port, _ = net.SplitHostPort(ln.Addr().String())
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				b.serve(nc)
			}()
		}
	}()
	go func() { <-t.Context().Done(); ln.Close() }()
	return b
}

func (b *ttBackend) serve(nc net.Conn) {
	ctx := context.Background()
	p := protocolFactory("binary").GetProtocol(wrapTransport(thrift.NewTSocketFromConnConf(nc, &thrift.TConfiguration{}), true))
	upgraded := false
	for {
		var h ttHeader
		if upgraded {
			var err error
			if h, err = readTTHeader(ctx, p); err != nil {
				return
			}
		}
		name, _, seq, err := p.ReadMessageBegin(ctx)
		if err != nil {
			return
		}
		if name == canTraceMethod && !upgraded {
			_ = p.Skip(ctx, thrift.STRUCT)
			_ = p.ReadMessageEnd(ctx)
			_ = p.WriteMessageBegin(ctx, name, thrift.REPLY, seq)
			writeEmptyStruct(ctx, p)
			_ = p.WriteMessageEnd(ctx)
			if p.Flush(ctx) != nil {
				return
			}
			upgraded = true
			b.mu.Lock()
			b.upgrades++
			b.mu.Unlock()
			continue
		}
		var args echoArgs
		if err := args.Read(ctx, p); err != nil {
			return
		}
		_ = p.ReadMessageEnd(ctx)
		b.mu.Lock()
		b.calls = append(b.calls, ttCall{method: name, header: h})
		b.mu.Unlock()
		if upgraded {
			writeEmptyStruct(ctx, p) // ResponseHeader
		}
		s := b.name + ":" + args.Msg
		_ = p.WriteMessageBegin(ctx, name, thrift.REPLY, seq)
		_ = (&echoResult{Success: &s}).Write(ctx, p)
		_ = p.WriteMessageEnd(ctx)
		if p.Flush(ctx) != nil {
			return
		}
	}
}

// last returns the last call received and how many upgrades were made.
func (b *ttBackend) last(t *testing.T) (ttCall, int) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.calls) == 0 {
		t.Fatalf("%s received no call", b.name)
	}
	return b.calls[len(b.calls)-1], b.upgrades
}

// ttClient is a TTwitter client (framed, binary).
type ttClient struct {
	p   thrift.TProtocol
	seq int32
}

func dialTT(t *testing.T, addr string) *ttClient {
	t.Helper()
	sock := thrift.NewTSocketConf(addr, &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 10 * time.Second})
	trans := wrapTransport(sock, true)
	if err := trans.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trans.Close() })
	c := &ttClient{p: protocolFactory("binary").GetProtocol(trans)}
	ctx := context.Background()
	_ = c.p.WriteMessageBegin(ctx, canTraceMethod, thrift.CALL, 0)
	writeEmptyStruct(ctx, c.p) // ConnectionOptions
	_ = c.p.WriteMessageEnd(ctx)
	if err := c.p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	name, typ, seq, err := c.p.ReadMessageBegin(ctx)
	if err != nil || name != canTraceMethod || typ != thrift.REPLY || seq != 0 {
		t.Fatalf("upgrade answered %q %v %d, %v; want a reply", name, typ, seq, err)
	}
	if err := c.p.Skip(ctx, thrift.STRUCT); err != nil {
		t.Fatal(err)
	}
	_ = c.p.ReadMessageEnd(ctx)
	return c
}

// call sends echo(msg) after h and returns the reply or the exception.
func (c *ttClient) call(h ttHeader, msg string) (string, error) {
	ctx := context.Background()
	c.seq++
	writeTTHeader(ctx, c.p, h)
	_ = c.p.WriteMessageBegin(ctx, "echo", thrift.CALL, c.seq)
	_ = (&echoArgs{Msg: msg}).Write(ctx, c.p)
	_ = c.p.WriteMessageEnd(ctx)
	if err := c.p.Flush(ctx); err != nil {
		return "", err
	}
	if err := c.p.Skip(ctx, thrift.STRUCT); err != nil { // ResponseHeader
		return "", err
	}
	name, typ, seq, err := c.p.ReadMessageBegin(ctx)
	if err != nil {
		return "", err
	}
	if name != "echo" || seq != c.seq {
		return "", fmt.Errorf("reply %q seq %d; want echo seq %d", name, seq, c.seq)
	}
	if typ == thrift.EXCEPTION {
		exc := thrift.NewTApplicationException(0, "")
		if err := exc.Read(ctx, c.p); err != nil {
			return "", err
		}
		_ = c.p.ReadMessageEnd(ctx)
		return "", exc
	}
	var res echoResult
	if err := res.Read(ctx, c.p); err != nil {
		return "", err
	}
	_ = c.p.ReadMessageEnd(ctx)
	if res.Success == nil {
		return "", errors.New("no result")
	}
	return *res.Success, nil
}

// A TTwitter client upgrades its connection to the router, and the
// router its connections to TTwitter endpoints: the dest names the
// service, the delegations reroute a call, the trace continues to the
// endpoint and the client id and delegations travel on; a server with
// clearContext drops the delegations and the trace. A plain client of
// the same router reaches the endpoint over an upgraded connection too.
func TestThriftRouterTTwitter(t *testing.T) {
	def := startTTBackend(t, "def")
	users := startTTBackend(t, "users")
	other := startTTBackend(t, "other")
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: thrift
  dtab: |
    /svc       => /$/inet/127.0.0.1/`+def.port+`;
    /svc/users => /$/inet/127.0.0.1/`+users.port+`;
  servers: [{port: 0}, {port: 0, clearContext: true}]
  client: {attemptTTwitterUpgrade: true}
`)
	if err != nil {
		t.Fatal(err)
	}
	sampled := true
	const traceID, spanID = 0x1111, 0x2222
	reroute := [][2]string{{"/svc/users", "/$/inet/127.0.0.1/" + other.port}}
	cl := dialTT(t, p.ServerAddrs()[0])

	if got, err := cl.call(ttHeader{traceID: traceID, spanID: spanID, sampled: &sampled, clientID: "tester", dest: "users"}, "a"); err != nil || got != "users:a" {
		t.Fatalf("dest users: %q, %v; want users:a", got, err)
	}
	c, ups := users.last(t)
	h := c.header
	if ups != 1 || h.traceID != traceID || !h.hasParent || h.parentID != spanID || h.spanID == spanID || h.spanID == 0 {
		t.Errorf("endpoint header %+v after %d upgrades; want one upgrade, trace %#x with a new span under %#x", h, ups, traceID, spanID)
	}
	if h.sampled == nil || !*h.sampled || h.clientID != "tester" || h.dest != "users" || h.delegations != nil {
		t.Errorf("endpoint header %+v; want sampled, client id tester, dest users, no delegations", h)
	}

	if got, err := cl.call(ttHeader{traceID: traceID, spanID: spanID, dest: "users", delegations: reroute}, "b"); err != nil || got != "other:b" {
		t.Fatalf("a delegation rerouting users: %q, %v; want other:b", got, err)
	}
	if c, _ := other.last(t); len(c.header.delegations) != 1 || c.header.delegations[0] != reroute[0] {
		t.Errorf("endpoint delegations %v; want %v passed on", c.header.delegations, reroute)
	}
	if got, err := cl.call(ttHeader{traceID: 3, spanID: 4}, "c"); err != nil || got != "def:c" {
		t.Errorf("no dest: %q, %v; want def:c", got, err)
	}
	_, err = cl.call(ttHeader{traceID: 3, spanID: 4, delegations: [][2]string{{"svc", "x"}}}, "d")
	var ae thrift.TApplicationException
	if !errors.As(err, &ae) || !strings.Contains(ae.Error(), `Invalid ttwitter delegation header "svc=>x"`) {
		t.Errorf("a bad delegation: %v; want an exception naming it", err)
	}
	if got, err := cl.call(ttHeader{traceID: 3, spanID: 4, dest: "users"}, "e"); err != nil || got != "users:e" {
		t.Errorf("after an exception: %q, %v", got, err)
	}

	// clearContext: the delegation and the trace are dropped.
	cleared := dialTT(t, p.ServerAddrs()[1])
	if got, err := cleared.call(ttHeader{traceID: traceID, spanID: spanID, dest: "users", delegations: reroute, clientID: "tester"}, "f"); err != nil || got != "users:f" {
		t.Fatalf("clearContext: %q, %v; want users:f (delegation ignored)", got, err)
	}
	if c, _ := users.last(t); c.header.traceID == traceID || c.header.delegations != nil || c.header.dest != "users" {
		t.Errorf("clearContext: endpoint header %+v; want a new trace, no delegations, dest users", c.header)
	}

	// A plain client: the call is forwarded with a header of the
	// router's trace.
	plain := dialThrift(t, p.ServerAddrs()[0], true, "binary")
	if got, err := plain.call("echo", &echoArgs{Msg: "g"}); err != nil || got != "def:g" {
		t.Fatalf("plain client: %q, %v", got, err)
	}
	if c, _ := def.last(t); c.header.traceID == 0 || c.header.spanID == 0 || c.header.dest != "" {
		t.Errorf("plain client: endpoint header %+v; want a trace and no dest", c.header)
	}
}

// An endpoint that is not TTwitter (the library's plain server answers
// the upgrade call with UNKNOWN_METHOD) is spoken to in plain Thrift:
// calls of plain and TTwitter clients both reach it.
func TestThriftRouterTTwitterFallback(t *testing.T) {
	be := startThriftBackend(t, "plain", true, "binary")
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: thrift
  dtab: /svc => /$/inet/127.0.0.1/`+be.port+`;
  servers: [{port: 0}]
  client: {attemptTTwitterUpgrade: true}
`)
	if err != nil {
		t.Fatal(err)
	}
	plain := dialThrift(t, p.ServerAddrs()[0], true, "binary")
	tt := dialTT(t, p.ServerAddrs()[0])
	for i := range 3 {
		if got, err := plain.call("echo", &echoArgs{Msg: fmt.Sprint("p", i)}); err != nil || !strings.HasPrefix(got, fmt.Sprint("plain:p", i)) {
			t.Fatalf("plain client: %q, %v", got, err)
		}
		if got, err := tt.call(ttHeader{traceID: 1, spanID: 2, dest: "x"}, fmt.Sprint("t", i)); err != nil || !strings.HasPrefix(got, fmt.Sprint("plain:t", i)) {
			t.Fatalf("TTwitter client: %q, %v", got, err)
		}
	}
}

// With client kind io.l5d.static, thriftFramed, thriftProtocol and
// attemptTTwitterUpgrade apply per prefix of the bound name: one router
// speaks framed binary to one endpoint, buffered compact to another (for
// the callers of its buffered compact server: a call's bytes are
// forwarded as they came) and TTwitter to a third.
func TestThriftRouterPerPrefixClients(t *testing.T) {
	framed := startThriftBackend(t, "framed", true, "binary")
	compact := startThriftBackend(t, "compact", false, "compact")
	tt := startTTBackend(t, "tt")
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: thrift
  thriftMethodInDst: true
  dtab: |
    /svc/echo  => /$/inet/127.0.0.1/`+framed.port+`;
    /svc/echo2 => /$/inet/127.0.0.1/`+compact.port+`;
    /svc/tt    => /$/inet/127.0.0.1/`+tt.port+`;
  servers: [{port: 0}, {port: 0, thriftFramed: false, thriftProtocol: compact}]
  client:
    kind: io.l5d.static
    configs:
    - prefix: /$/inet/127.0.0.1/`+compact.port+`
      thriftFramed: false
      thriftProtocol: compact
    - prefix: /$/inet/127.0.0.1/`+tt.port+`
      attemptTTwitterUpgrade: true
`)
	if err != nil {
		t.Fatal(err)
	}
	binaryCaller := dialThrift(t, p.ServerAddrs()[0], true, "binary")
	compactCaller := dialThrift(t, p.ServerAddrs()[1], false, "compact")
	for i := range 2 {
		for _, c := range []struct {
			cl           *thriftClient
			method, want string
		}{
			{binaryCaller, "echo", "framed:m" + fmt.Sprint(i) + " sum=0"},
			{compactCaller, "echo2", "compact:m" + fmt.Sprint(i) + " sum=0"},
			{binaryCaller, "tt", "tt:m" + fmt.Sprint(i)},
		} {
			if got, err := c.cl.call(c.method, &echoArgs{Msg: fmt.Sprint("m", i)}); err != nil || !strings.HasPrefix(got, c.want) {
				t.Errorf("%s: %q, %v; want %q…", c.method, got, err, c.want)
			}
		}
	}
	if c, ups := tt.last(t); ups != 1 || c.header.traceID == 0 {
		t.Errorf("the TTwitter endpoint saw %d upgrades and header %+v; want 1 and a trace", ups, c.header)
	}
}
