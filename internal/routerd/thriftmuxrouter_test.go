package routerd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/linnet-mesh/linnet/internal/proxy/mux"
)

// ---- Thrift payloads, encoded and decoded by the apache/thrift library.

// libProtocol returns the library's protocol for proto ("binary" or
// "compact") on buf.
func libProtocol(proto string, buf thrift.TTransport) thrift.TProtocol {
	return protocolFactory(proto).GetProtocol(buf)
}

func encodeThriftCall(proto, name string, seq int32, args *echoArgs) []byte {
	ctx := context.Background()
	buf := thrift.NewTMemoryBuffer()
	p := libProtocol(proto, buf)
	_ = p.WriteMessageBegin(ctx, name, thrift.CALL, seq)
	_ = args.Write(ctx, p)
	_ = p.WriteMessageEnd(ctx)
	_ = p.Flush(ctx)
	return buf.Bytes()
}

// decodeThriftReply reads an echo reply, or the exception it carries.
func decodeThriftReply(proto string, b []byte, wantSeq int32) (string, error) {
	ctx := context.Background()
	buf := thrift.NewTMemoryBuffer()
	_, _ = buf.Write(b)
	p := libProtocol(proto, buf)
	_, typ, seq, err := p.ReadMessageBegin(ctx)
	if err != nil {
		return "", err
	}
	if seq != wantSeq {
		return "", fmt.Errorf("reply has sequence id %d, want %d", seq, wantSeq)
	}
	if typ == thrift.EXCEPTION {
		exc := thrift.NewTApplicationException(0, "")
		if err := exc.Read(ctx, p); err != nil {
			return "", err
		}
		return "", exc
	}
	var res echoResult
	if err := res.Read(ctx, p); err != nil {
		return "", err
	}
	if res.Success == nil {
		return "", errors.New("no result")
	}
	return *res.Success, nil
}

// ---- a Mux endpoint: the codec's server session, a Thrift echo service
// inside (the library decodes the calls and encodes the replies).

type muxSeen struct {
	dst      string
	dtab     []mux.Dentry
	contexts map[string][]byte
}

type muxBackend struct {
	name      string
	port      string
	ln        net.Listener
	calls     atomic.Int64
	sessions  atomic.Int64
	inFlight  atomic.Int64
	maxFlight atomic.Int64 // the most calls in flight at once
	discarded chan string

	mu    sync.Mutex
	conns map[net.Conn]bool
	seen  []muxSeen
	dead  bool
}

func startMuxBackend(t *testing.T, name string) *muxBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &muxBackend{name: name, ln: ln, conns: map[net.Conn]bool{}, discarded: make(chan string, 4)}
	_, b.port, _ = net.SplitHostPort(ln.Addr().String())
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
			b.sessions.Add(1)
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				first, err := mux.ReadFrame(br)
				if err != nil {
					return
				}
				_ = mux.NewServerSession(nc, b.handle, 0, 0).Serve(context.Background(), br, first)
			}()
		}
	}()
	t.Cleanup(b.kill)
	return b
}

func (b *muxBackend) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dead = true
	b.ln.Close()
	for c := range b.conns {
		c.Close()
	}
}

func (b *muxBackend) last() muxSeen {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		return muxSeen{}
	}
	return b.seen[len(b.seen)-1]
}

// handle answers echo calls with "<name>:<msg>"; "sleep N" sleeps N ms
// first, "block" waits to be discarded, "fail" answers an error status.
func (b *muxBackend) handle(ctx context.Context, d *mux.Dispatch) (byte, []byte) {
	seen := muxSeen{dst: d.Dst, dtab: d.Dtab, contexts: map[string][]byte{}}
	for _, c := range d.Contexts {
		seen.contexts[string(c.Key)] = c.Value
	}
	b.mu.Lock()
	b.seen = append(b.seen, seen)
	b.mu.Unlock()
	b.calls.Add(1)
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for m := b.maxFlight.Load(); n > m && !b.maxFlight.CompareAndSwap(m, n); m = b.maxFlight.Load() {
	}
	proto := "binary"
	if len(d.Body) > 0 && d.Body[0] == 0x82 {
		proto = "compact"
	}
	buf := thrift.NewTMemoryBuffer()
	_, _ = buf.Write(d.Body)
	in := libProtocol(proto, buf)
	name, _, seq, err := in.ReadMessageBegin(ctx)
	if err != nil {
		return mux.StatusError, []byte(err.Error())
	}
	var args echoArgs
	if err := args.Read(ctx, in); err != nil {
		return mux.StatusError, []byte(err.Error())
	}
	switch {
	case args.Msg == "block":
		<-ctx.Done()
		b.discarded <- b.name
		return mux.StatusOK, nil
	case args.Msg == "fail":
		return mux.StatusError, []byte("the backend failed")
	case strings.HasPrefix(args.Msg, "sleep "):
		var ms int
		fmt.Sscan(args.Msg[6:], &ms)
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	s := b.name + ":" + args.Msg
	out := thrift.NewTMemoryBuffer()
	p := libProtocol(proto, out)
	_ = p.WriteMessageBegin(ctx, name, thrift.REPLY, seq)
	_ = (&echoResult{Success: &s}).Write(ctx, p)
	_ = p.WriteMessageEnd(ctx)
	_ = p.Flush(ctx)
	return mux.StatusOK, out.Bytes()
}

// ---- a Mux caller.

type muxCaller struct {
	s     *mux.ClientSession
	seq   atomic.Int32
	proto string // of the payloads: binary (the default) or compact
}

func dialMux(t *testing.T, addr string) *muxCaller {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := mux.Handshake(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &muxCaller{s: s}
}

func (c *muxCaller) call(ctx context.Context, d *mux.Dispatch, method, msg string) (string, error) {
	if d == nil {
		d = new(mux.Dispatch)
	}
	seq := c.seq.Add(1)
	proto := c.proto
	if proto == "" {
		proto = "binary"
	}
	status, reply, err := c.s.Dispatch(ctx, d, encodeThriftCall(proto, method, seq, &echoArgs{Msg: msg}))
	if err != nil {
		return "", err
	}
	if status != mux.StatusOK {
		return "", fmt.Errorf("status %d: %s", status, reply)
	}
	return decodeThriftReply(proto, reply, seq)
}

func traceContext(span, parent, trace uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, span)
	b = binary.BigEndian.AppendUint64(b, parent)
	b = binary.BigEndian.AppendUint64(b, trace)
	return binary.BigEndian.AppendUint64(b, 6) // sampling known, sampled
}

// ---- tests ----

// Routing: by method (thriftMethodInDst), by the Tdispatch destination,
// and a per-call dtab that reroutes one call, ignored on a clearContext
// server. The trace, deadline, dtab and other contexts travel on to the
// endpoint; Tping is answered; unknown names and endpoint errors are
// answered as TApplicationExceptions.
func TestThriftMuxRouterRoutes(t *testing.T) {
	one := startMuxBackend(t, "one")
	two := startMuxBackend(t, "two")
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: thriftmux
  experimental: true
  thriftMethodInDst: true
  dtab: |
    /svc/echo  => /$/inet/127.0.0.1/`+one.port+`;
    /svc/echo2 => /$/inet/127.0.0.1/`+two.port+`;
    /svc/users => /$/inet/127.0.0.1/`+two.port+`;
  servers: [{port: 0}, {port: 0, clearContext: true}]
`)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := dialMux(t, p.ServerAddrs()[0])
	if got, err := c.call(ctx, nil, "echo", "a"); err != nil || got != "one:a" {
		t.Errorf("echo = %q, %v; want one:a", got, err)
	}
	if got, err := c.call(ctx, nil, "echo2", "b"); err != nil || got != "two:b" {
		t.Errorf("echo2 = %q, %v; want two:b", got, err)
	}
	if got, err := c.call(ctx, &mux.Dispatch{Dst: "/users"}, "echo", "c"); err != nil || got != "two:c" {
		t.Errorf("echo to dst /users = %q, %v; want two:c", got, err)
	}

	// A per-call dtab reroutes echo; the call's contexts go on.
	deadline := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	d := &mux.Dispatch{
		Dtab: []mux.Dentry{{Prefix: "/svc/echo", Dst: "/$/inet/127.0.0.1/" + two.port}},
		Contexts: []mux.Context{
			{Key: []byte(mux.TraceContextKey), Value: traceContext(11, 10, 0xabc)},
			{Key: []byte(mux.DeadlineKey), Value: mux.EncodeDeadline(mux.Deadline{Timestamp: time.Now(), Deadline: deadline})},
			{Key: []byte("com.example.Tenant"), Value: []byte("blue")},
		},
	}
	if got, err := c.call(ctx, d, "echo", "d"); err != nil || got != "two:d" {
		t.Errorf("echo with a dtab = %q, %v; want two:d", got, err)
	}
	seen := two.last()
	if len(seen.dtab) != 1 || seen.dtab[0] != d.Dtab[0] {
		t.Errorf("endpoint dtab = %v; want the caller's", seen.dtab)
	}
	if string(seen.contexts["com.example.Tenant"]) != "blue" {
		t.Errorf("endpoint contexts = %q; want the caller's Tenant", seen.contexts)
	}
	tc := seen.contexts[mux.TraceContextKey]
	if len(tc) < 32 || binary.BigEndian.Uint64(tc[16:24]) != 0xabc {
		t.Errorf("endpoint trace context = %x; want trace id abc", tc)
	}
	if dl, ok := mux.ParseDeadline(seen.contexts[mux.DeadlineKey]); !ok || !dl.Deadline.Equal(deadline) {
		t.Errorf("endpoint deadline = %v, %v; want %v", dl.Deadline, ok, deadline)
	}

	// The clearContext server ignores the dtab and the contexts.
	cc := dialMux(t, p.ServerAddrs()[1])
	if got, err := cc.call(ctx, d, "echo", "e"); err != nil || got != "one:e" {
		t.Errorf("echo with a dtab on a clearContext server = %q, %v; want one:e", got, err)
	}
	seen = one.last()
	if len(seen.dtab) != 0 || seen.contexts["com.example.Tenant"] != nil || seen.contexts[mux.DeadlineKey] != nil {
		t.Errorf("clearContext: endpoint saw %+v; want no dtab, tenant or deadline", seen)
	}
	if tc := seen.contexts[mux.TraceContextKey]; len(tc) >= 32 && binary.BigEndian.Uint64(tc[16:24]) == 0xabc {
		t.Error("clearContext: the caller's trace reached the endpoint")
	}

	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.s.Ping(pctx); err != nil {
		t.Errorf("ping: %v", err)
	}

	_, err = c.call(ctx, nil, "missing", "x")
	var ae thrift.TApplicationException
	if !errors.As(err, &ae) || ae.TypeId() != thrift.INTERNAL_ERROR || !strings.Contains(ae.Error(), "Unable to route request!") || !strings.Contains(ae.Error(), "/svc/missing") {
		t.Errorf("unknown name: %v; want an INTERNAL_ERROR exception naming /svc/missing", err)
	}
	_, err = c.call(ctx, nil, "echo", "fail")
	if !errors.As(err, &ae) || !strings.Contains(ae.Error(), "the backend failed") {
		t.Errorf("endpoint error status: %v; want an exception with the endpoint's message", err)
	}
	if got, err := c.call(ctx, nil, "echo", "still"); err != nil || got != "one:still" {
		t.Errorf("after errors = %q, %v", got, err)
	}
}

// 50 calls in flight on one caller session, answered out of order, all
// carried to the endpoint on one session; a discarded call is discarded
// at the endpoint too.
func TestThriftMuxRouterMultiplexesAndDiscards(t *testing.T) {
	be := startMuxBackend(t, "be")
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: thriftmux
  experimental: true
  dtab: /svc => /$/inet/127.0.0.1/`+be.port+`;
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	c := dialMux(t, p.ServerAddrs()[0])
	const n = 50
	var wg sync.WaitGroup
	order := make(chan int, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("sleep %d", 2*(n-i)) // the first sent answers last
			got, err := c.call(context.Background(), nil, "echo", msg)
			if err != nil || got != "be:"+msg {
				errs <- fmt.Errorf("call %d = %q, %v", i, got, err)
			}
			order <- i
		}()
	}
	wg.Wait()
	close(errs)
	close(order)
	for err := range errs {
		t.Error(err)
	}
	var first []int
	for i := range order {
		first = append(first, i)
	}
	if first[0] == 0 {
		t.Errorf("replies came in the order sent (%v…); the calls were not in flight together", first[:5])
	}
	if m := be.maxFlight.Load(); m < n/2 {
		t.Errorf("at most %d calls were in flight at the endpoint; want most of the %d", m, n)
	}
	if s := be.sessions.Load(); s != 1 {
		t.Errorf("the endpoint saw %d sessions; want 1 carrying every call", s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.call(ctx, nil, "echo", "block"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("discarded call: %v", err)
	}
	select {
	case <-be.discarded:
	case <-time.After(5 * time.Second):
		t.Fatal("the endpoint's call was not discarded")
	}
	if got, err := c.call(context.Background(), nil, "echo", "after"); err != nil || got != "be:after" {
		t.Errorf("after discard = %q, %v", got, err)
	}
}

// Downgrade: a plain framed Thrift client of the thriftmux port is
// served. Fallback: an endpoint that speaks plain Thrift only is called
// in plain Thrift.
func TestThriftMuxRouterDowngradeAndFallback(t *testing.T) {
	be := startMuxBackend(t, "mux")
	plain := startThriftBackend(t, "plain", true, "binary")
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: thriftmux
  experimental: true
  dtab: |
    /svc => /$/inet/127.0.0.1/`+be.port+`;
    /svc/plain => /$/inet/127.0.0.1/`+plain.port+`;
  servers: [{port: 0}, {port: 0, thriftProtocol: compact}]
`)
	if err != nil {
		t.Fatal(err)
	}
	// The compact server: Mux calls and plain ones, compact payloads.
	cc := dialMux(t, p.ServerAddrs()[1])
	cc.proto = "compact"
	if got, err := cc.call(context.Background(), nil, "echo", "compact"); err != nil || got != "mux:compact" {
		t.Errorf("compact mux call = %q, %v", got, err)
	}
	if got, err := dialThrift(t, p.ServerAddrs()[1], true, "compact").call("echo", &echoArgs{Msg: "compact-plain"}); err != nil || got != "mux:compact-plain" {
		t.Errorf("compact plain caller = %q, %v", got, err)
	}
	tc := dialThrift(t, p.ServerAddrs()[0], true, "binary")
	for i := range 3 {
		if got, err := tc.call("echo", &echoArgs{Msg: fmt.Sprint("plain-caller", i)}); err != nil || got != fmt.Sprint("mux:plain-caller", i) {
			t.Errorf("plain caller = %q, %v", got, err)
		}
	}
	c := dialMux(t, p.ServerAddrs()[0])
	for i := range 3 {
		got, err := c.call(context.Background(), &mux.Dispatch{Dst: "/plain"}, "echo", "to-plain")
		if want := "plain:to-plain" + " sum=0 tags=0/0 ratio=0 inner=-"; err != nil || got != want {
			t.Errorf("call %d to a plain endpoint = %q, %v; want %q", i, got, err, want)
		}
	}
	if plain.calls.Load() != 3 {
		t.Errorf("the plain endpoint served %d calls; want 3", plain.calls.Load())
	}
}

// Two endpoints of one replica set; one killed: the calls that follow
// all succeed on the other, failure accrual removes the dead one, and
// the metrics count it all.
func TestThriftMuxRouterFailsOverAndCounts(t *testing.T) {
	a := startMuxBackend(t, "a")
	b := startMuxBackend(t, "b")
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
- protocol: thriftmux
  label: tm
  experimental: true
  dtab: /svc => /#/io.l5d.fs/pair;
  servers: [{port: 0}]
  client:
    failureAccrual: {kind: io.l5d.consecutiveFailures, failures: 2}
`)
	if err != nil {
		t.Fatal(err)
	}
	c := dialMux(t, p.ServerAddrs()[0])
	const n = 40
	for i := range n {
		if _, err := c.call(context.Background(), nil, "echo", "m"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if a.calls.Load() == 0 || b.calls.Load() == 0 {
		t.Fatalf("calls a=%d b=%d; want both used", a.calls.Load(), b.calls.Load())
	}
	b.kill()
	before := a.calls.Load()
	// A call sent on b's session before the router has read b's close
	// was written, so it fails rather than being requeued (as in Linkerd);
	// that can only be the first call after the kill. Every other call is
	// a's.
	failed := 0
	for i := range n {
		got, err := c.call(context.Background(), nil, "echo", "m")
		if err != nil && i == 0 {
			failed++
			continue
		}
		if err != nil || got != "a:m" {
			t.Fatalf("call %d after b was killed = %q, %v; want a's reply", i, got, err)
		}
	}
	if got := a.calls.Load() - before; got != int64(n-failed) {
		t.Errorf("a served %d of the %d calls after b was killed (%d failed)", got, n, failed)
	}
	_, port, _ := net.SplitHostPort(p.ServerAddrs()[0])
	m := thriftMetrics(t, p)
	ok := float64(2*n - failed)
	for key, want := range map[string]float64{
		"rt/tm/server/127.0.0.1/" + port + "/requests": 2 * n,
		"rt/tm/server/127.0.0.1/" + port + "/success":  ok,
		"rt/tm/service/svc/requests":                   2 * n,
		"rt/tm/client/#/io.l5d.fs/pair/success":        ok,
	} {
		if m[key] != want {
			t.Errorf("%s = %v; want %v", key, m[key], want)
		}
	}
	if m["rt/tm/client/#/io.l5d.fs/pair/failure_accrual/removals"] < 1 {
		t.Errorf("failure_accrual/removals = %v; want the killed endpoint removed", m["rt/tm/client/#/io.l5d.fs/pair/failure_accrual/removals"])
	}
}

func TestThriftMuxRouterConfig(t *testing.T) {
	cfg, err := LoadConfig([]byte("routers:\n- protocol: thriftmux\n  experimental: true\n  servers: [{}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	tm := cfg.Routers[0].Value.(*ThriftMuxRouter)
	if tm.Label != "thriftmux" || tm.Servers[0].Port != DefaultThriftMuxPort || tm.ThriftProtocol != "binary" || tm.DstPrefix.Text != "/svc" {
		t.Errorf("defaults: label %q port %d protocol %q prefix %q", tm.Label, tm.Servers[0].Port, tm.ThriftProtocol, tm.DstPrefix.Text)
	}
	const r = "routers:\n- protocol: thriftmux\n  experimental: true\n"
	for _, tt := range []struct{ name, text, want string }{
		{"not experimental", "routers:\n- protocol: thriftmux\n  servers: [{}]\n", "routers[0].protocol: protocol thriftmux is experimental and requires `experimental: true`"},
		{"server framed", r + "  servers: [{thriftFramed: true}]\n", "routers[0].servers[0].thriftFramed: `thriftFramed` applies to thrift routers"},
		{"client ttwitter", r + "  servers: [{}]\n  client: {attemptTTwitterUpgrade: true}\n", "`attemptTTwitterUpgrade` applies to thrift routers"},
		{"client tls", r + "  servers: [{}]\n  client: {tls: {trustCerts: [/a.pem]}}\n", "routers[0].client.tls.commonName: client TLS needs `commonName`"},
		{"protocol", r + "  servers: [{}]\n  thriftProtocol: json\n", `routers[0].thriftProtocol: "json" is not a thrift protocol`},
		{"per prefix protocol", r + "  servers: [{}]\n  client:\n    kind: io.l5d.static\n    configs:\n    - prefix: /$/inet\n      thriftProtocol: compact\n",
			"routers[0].client.configs[0].thriftProtocol: thriftProtocol is not supported per prefix on thriftmux routers"},
		{"mux", "routers:\n- protocol: mux\n  servers: [{}]\n", `protocol "mux" is a Linkerd 1.x option not supported by this version`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig([]byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want %q", err, tt.want)
			}
		})
	}
}

// Stopping the router drains its sessions: the caller is told (Tdrain)
// and sends no more, the call in flight is answered, and the session then
// ends.
func TestThriftMuxRouterDrainsOnStop(t *testing.T) {
	be := startMuxBackend(t, "be")
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: thriftmux
  experimental: true
  dtab: /svc => /$/inet/127.0.0.1/`+be.port+`;
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	c := dialMux(t, p.ServerAddrs()[0])
	type result struct {
		got string
		err error
	}
	res := make(chan result, 1)
	go func() {
		got, err := c.call(context.Background(), nil, "echo", "sleep 300")
		res <- result{got, err}
	}()
	for deadline := time.Now().Add(5 * time.Second); be.calls.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the call never reached the endpoint")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- p.StopGrace(10 * time.Second) }()
	for deadline := time.Now().Add(5 * time.Second); c.s.Usable(); {
		if time.Now().After(deadline) {
			t.Fatal("the caller was not asked to drain")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := <-res; r.err != nil || r.got != "be:sleep 300" {
		t.Errorf("call in flight = %q, %v; want it answered", r.got, r.err)
	}
	select {
	case <-c.s.Done():
	case <-time.After(5 * time.Second):
		t.Error("the drained session did not end")
	}
	if err := <-stopped; err != nil {
		t.Errorf("stop: %v", err)
	}
}
