package thrift

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/storage/memory"
)

type testServer struct {
	srv   *Server
	addr  string
	store storage.Store
	fs    *naming.StaticNamer
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	prefix := dtab.Path{"#", "io.l5d.fs"}
	fs := naming.NewStaticNamer(prefix, map[string][]naming.Address{
		"web":  {{Host: "127.0.0.1", Port: 7001, Weight: 1}},
		"web2": {{Host: "::1", Port: 7002, Weight: 2, Meta: map[string]any{"nodeName": "n1"}}},
	})
	store := memory.New(map[string]dtab.Dtab{"default": dtab.MustParse("/svc => /#/io.l5d.fs")})
	cfg := InterfaceConfig{}
	cfg.SetDefaults()
	srv := NewServer(Options{Store: store, Interpreter: naming.NewInterpreter([]naming.MountedNamer{{Prefix: prefix, Namer: fs}}), Config: cfg})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testServer{srv: srv, addr: l.Addr().String(), store: store, fs: fs}
}

// rawConn speaks mux (or framed Thrift) byte by byte, as a Finagle peer.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(typ int8, tag uint32, parts ...[]byte) {
	r.t.Helper()
	if _, err := r.c.Write(appendMux(nil, typ, tag, parts...)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) recv() muxMsg {
	r.t.Helper()
	f, err := readFrame(r.br)
	if err != nil {
		r.t.Fatal(err)
	}
	m, err := parseMux(f)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *rawConn) handshake() {
	r.t.Helper()
	r.send(muxBadRerr, tinitTag, []byte(canTinit))
	if m := r.recv(); m.typ != muxBadRerr || m.tag != tinitTag || string(m.body) != canTinit {
		r.t.Fatalf("tinit check answer: %+v", m)
	}
	// Headers asking for features (fragmentation) get none back.
	r.send(muxTinit, tinitTag, initBody(1, [][2][]byte{{[]byte("mux-framer"), []byte{0, 0, 1, 0}}}))
	m := r.recv()
	v, h, err := parseInit(m.body)
	if m.typ != muxRinit || m.tag != tinitTag || err != nil || v != 1 || len(h) != 0 {
		r.t.Fatalf("Rinit: %+v (%d %v %v)", m, v, h, err)
	}
}

// dispatch sends a Thrift message in a Tdispatch carrying contexts and a
// dtab, as Finagle does.
func (r *rawConn) dispatch(tag uint32, msg []byte) {
	r.t.Helper()
	hdr := []byte{0, 1, 0, 2, 'c', 'k', 0, 1, 'v', 0, 0, 0, 1, 0, 2, '/', 'a', 0, 2, '/', 'b'}
	r.send(muxTdispatch, tag, hdr, msg)
}

func (r *rawConn) reply(tag uint32) []byte {
	r.t.Helper()
	m := r.recv()
	if m.typ != muxRdispatch || m.tag != tag {
		r.t.Fatalf("want Rdispatch tag %d, got type %d tag %d %q", tag, m.typ, m.tag, m.body)
	}
	st, body, err := parseRdispatch(m.body)
	if err != nil || st != statusOK {
		r.t.Fatalf("Rdispatch status %d %v %q", st, err, body)
	}
	return body
}

func bindCall(t *testing.T, seq int32, stamp []byte, p ...string) []byte {
	return mustEncode(t, MethodBind, thrift.CALL, seq, 1, &BindReq{Name: NameRef{Stamp: stamp, Name: path(p...), Ns: "default"}})
}

func TestMuxSession(t *testing.T) {
	s := startServer(t)
	r := dialRaw(t, s.addr)
	r.handshake()
	r.send(muxTping, 9)
	if m := r.recv(); m.typ != muxRping || m.tag != 9 {
		t.Fatalf("ping: %+v", m)
	}

	r.dispatch(2, bindCall(t, 2, nil, "svc", "web"))
	var b Bound
	if err := decodeReply(r.reply(2), MethodBind, &b, &BindFailure{}); err != nil {
		t.Fatal(err)
	}
	if b.Ns != "default" || b.Tree.Root.Kind != NodeLeaf || toPath(b.Tree.Root.Leaf.ID).String() != "/#/io.l5d.fs/web" || len(b.Stamp) != 8 {
		t.Fatalf("bound: %+v", b)
	}

	// With the current stamp the request waits for a change.
	r.dispatch(3, bindCall(t, 3, b.Stamp, "svc", "web"))
	time.Sleep(100 * time.Millisecond)
	if err := s.store.Put(context.Background(), "default", dtab.MustParse("/svc => /#/io.l5d.fs; /svc/web => /#/io.l5d.fs/web2")); err != nil {
		t.Fatal(err)
	}
	var b2 Bound
	if err := decodeReply(r.reply(3), MethodBind, &b2, &BindFailure{}); err != nil {
		t.Fatal(err)
	}
	if toPath(b2.Tree.Root.Leaf.ID).String() != "/#/io.l5d.fs/web2" || string(b2.Stamp) == string(b.Stamp) {
		t.Fatalf("bound after update: %+v", b2)
	}
	// An old stamp is answered at once with the current value.
	r.dispatch(4, bindCall(t, 4, b.Stamp, "svc", "web"))
	var b3 Bound
	if err := decodeReply(r.reply(4), MethodBind, &b3, &BindFailure{}); err != nil || string(b3.Stamp) != string(b2.Stamp) {
		t.Fatalf("stale stamp: %v %+v", err, b3)
	}

	// A discarded long poll is answered with Rdiscarded.
	r.dispatch(5, bindCall(t, 5, b2.Stamp, "svc", "web"))
	r.send(muxBadTdiscard, 0, []byte{0, 0, 5}, []byte("timeout"))
	if m := r.recv(); m.typ != muxRdiscarded || m.tag != 5 {
		t.Fatalf("discard: %+v", m)
	}

	// addr: IPv4 and IPv6 addresses with metadata.
	addrCall := func(tag uint32, id ...string) Addr {
		t.Helper()
		r.dispatch(tag, mustEncode(t, MethodAddr, thrift.CALL, int32(tag), 1, &AddrReq{Name: NameRef{Name: path(id...), Ns: "default"}}))
		var a Addr
		if err := decodeReply(r.reply(tag), MethodAddr, &a, &AddrFailure{}); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := addrCall(6, "#", "io.l5d.fs", "web2")
	if a.Bound == nil || len(a.Bound.Addresses) != 1 || len(a.Bound.Addresses[0].IP) != 16 || a.Bound.Addresses[0].Port != 7002 ||
		*a.Bound.Addresses[0].Meta.Weight != 2 || *a.Bound.Addresses[0].Meta.NodeName != "n1" {
		t.Fatalf("addr web2: %+v", a.Bound)
	}
	if got := namingAddr(a); got.Addrs[0].HostPort() != "[::1]:7002" || got.Addrs[0].Weight != 2 {
		t.Fatalf("converted: %+v", got)
	}
	if a := addrCall(7, "#", "io.l5d.fs", "nope"); a.Bound != nil {
		t.Fatalf("addr of a missing name: %+v", a.Bound)
	}

	// Empty paths are failures that say not to retry soon.
	r.dispatch(8, bindCall(t, 8, nil))
	err := decodeReply(r.reply(8), MethodBind, &Bound{}, &BindFailure{})
	var bf *BindFailure
	if !errors.As(err, &bf) || bf.Reason != "empty path" || bf.RetryInSeconds != math.MaxInt32 || bf.Ns != "default" {
		t.Fatalf("empty path: %v", err)
	}

	// dtab long-polls too.
	r.dispatch(10, mustEncode(t, MethodDtab, thrift.CALL, 10, 1, &DtabReq{Ns: "default"}))
	var d DtabRef
	if err := decodeReply(r.reply(10), MethodDtab, &d, &DtabFailure{}); err != nil || d.Dtab != "/svc=>/#/io.l5d.fs;/svc/web=>/#/io.l5d.fs/web2" {
		t.Fatalf("dtab: %v %+v", err, d)
	}

	// delegate explains once (no long poll); unknown methods get a
	// TApplicationException.
	web := path("svc", "web")
	dreq := &DelegateReq{Delegation: Delegation{Stamp: []byte{}, Ns: "default", Tree: DelegateTree{
		Root: DelegateNode{Path: web, Dentry: nopDentry, Contents: DelegateContents{Kind: DelegatePathLeaf, PathLeaf: web}},
	}}}
	r.dispatch(11, mustEncode(t, MethodDelegate, thrift.CALL, 11, 1, dreq))
	var del Delegation
	if err := decodeReply(r.reply(11), MethodDelegate, &del, &DelegationFailure{}); err != nil {
		t.Fatal(err)
	}
	// /svc/web: two dentries match (the later first): an alt of two
	// bound leaves, each with the dentry that led to it.
	root := del.Tree.Root
	if root.Dentry != nopDentry || root.Contents.Kind != DelegateAlt || len(root.Contents.Alt) != 2 || del.Ns != "default" || len(del.Stamp) == 0 {
		t.Fatalf("delegation root: %+v", del)
	}
	first := del.Tree.Nodes[root.Contents.Alt[0]]
	if first.Dentry != "/svc/web=>/#/io.l5d.fs/web2" || first.Contents.Kind != DelegateBoundLeaf ||
		toPath(first.Contents.BoundLeaf.ID).String() != "/#/io.l5d.fs/web2" || toPath(first.Path).String() != "/#/io.l5d.fs/web2" {
		t.Fatalf("delegation nodes: %+v", del.Tree.Nodes)
	}
	// A stamped (old long-polling) request is never answered.
	dreq.Delegation.Stamp = del.Stamp
	r.dispatch(15, mustEncode(t, MethodDelegate, thrift.CALL, 15, 1, dreq))
	r.send(muxBadTdiscard, 0, []byte{0, 0, 15}, []byte("bye"))
	if m := r.recv(); m.typ != muxRdiscarded || m.tag != 15 {
		t.Fatalf("stamped delegate: %+v", m)
	}
	r.dispatch(12, mustEncode(t, "frobnicate", thrift.CALL, 12, 1, &DtabReq{}))
	var ae thrift.TApplicationException
	if err := decodeReply(r.reply(12), "frobnicate", &Bound{}, &BindFailure{}); !errors.As(err, &ae) || ae.TypeId() != thrift.UNKNOWN_METHOD {
		t.Fatalf("unknown method: %v", err)
	}

	// A malformed Thrift message is a dispatch error, not a dead session.
	r.dispatch(13, []byte{0x80, 1, 0, 1, 0xff})
	if m := r.recv(); m.typ != muxRdispatch || m.tag != 13 || m.body[0] != statusError {
		t.Fatalf("malformed: %+v", m)
	}
	r.send(muxTping, 14)
	if m := r.recv(); m.typ != muxRping {
		t.Fatalf("session after a bad message: %+v", m)
	}
}

func TestMuxWithoutHandshake(t *testing.T) {
	s := startServer(t)
	r := dialRaw(t, s.addr)
	r.dispatch(2, bindCall(t, 2, nil, "svc", "web"))
	if err := decodeReply(r.reply(2), MethodBind, &Bound{}, &BindFailure{}); err != nil {
		t.Fatal(err)
	}
	// Old-style Treq works too.
	r.send(muxTreq, 3, []byte{0}, bindCall(t, 3, nil, "svc", "web"))
	m := r.recv()
	if m.typ != muxRreq || m.tag != 3 || m.body[0] != statusOK {
		t.Fatalf("Rreq: %+v", m)
	}
	if err := decodeReply(m.body[1:], MethodBind, &Bound{}, &BindFailure{}); err != nil {
		t.Fatal(err)
	}
	r2 := dialRaw(t, s.addr)
	r2.handshake()
	r2.send(muxTinit, tinitTag, initBody(2, nil))
	if m := r2.recv(); m.typ != muxBadRerr || m.tag != tinitTag {
		t.Fatalf("Tinit version 2: %+v", m)
	}
}

// A plain framed-Thrift client (Finagle's Thrift.client probes the TTwitter
// upgrade first) is served too.
func TestFramedThrift(t *testing.T) {
	s := startServer(t)
	r := dialRaw(t, s.addr)
	call := func(msg []byte) []byte {
		t.Helper()
		if _, err := r.c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(msg))), msg...)); err != nil {
			t.Fatal(err)
		}
		f, err := readFrame(r.br)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	probe := wire(t, "80010001", "0000001b", "'__can__finagle__trace__v3__'", "00000000", "0c 0000", "00", "00")
	var ae thrift.TApplicationException
	if err := decodeReply(call(probe), "__can__finagle__trace__v3__", &Bound{}, &BindFailure{}); !errors.As(err, &ae) || ae.TypeId() != thrift.UNKNOWN_METHOD {
		t.Fatalf("upgrade probe: %v", err)
	}
	var b Bound
	if err := decodeReply(call(bindCall(t, 1, nil, "svc", "web")), MethodBind, &b, &BindFailure{}); err != nil || toPath(b.Tree.Root.Leaf.ID).String() != "/#/io.l5d.fs/web" {
		t.Fatalf("framed bind: %v %+v", err, b)
	}
}

// Idle observations are evicted; waiting ones are kept.
func TestCacheEviction(t *testing.T) {
	c := newCache[string, int](time.Minute, 1)
	st := newStamper()
	mk := func() *observer[int] {
		return newObserver(st, func(a, b int) bool { return a == b }, func() {})
	}
	a, b := c.get("a", mk), c.get("b", mk)
	now := time.Now()
	c.sweep(now)
	if c.len() != 1 { // one inactive allowed: the older goes
		t.Fatalf("after sweep: %d", c.len())
	}
	_ = a
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan struct{})
	go func() {
		defer close(waiting)
		_, _, _, _ = b.wait(ctx, nil) // no value yet: waits
	}()
	time.Sleep(50 * time.Millisecond)
	c.sweep(now.Add(time.Hour))
	if c.len() != 1 {
		t.Fatal("an observation with a waiter was evicted")
	}
	cancel()
	<-waiting
	c.sweep(time.Now().Add(time.Hour))
	if c.len() != 0 {
		t.Fatal("an idle observation outlived its TTL")
	}
	// Stamps are distinct and equal states keep theirs.
	b.update(1, nil)
	s1, _, _, _ := b.wait(context.Background(), nil)
	b.update(1, nil)
	s2, _, _, _ := b.wait(context.Background(), nil)
	b.update(2, nil)
	s3, v, _, _ := b.wait(context.Background(), s2)
	if string(s1) != string(s2) || string(s3) == string(s2) || v != 2 {
		t.Fatalf("stamps %x %x %x", s1, s2, s3)
	}
}

// The client session against the server: calls, a discarded long poll
// (its tag is freed by the server's Rdiscarded, not before), pings.
func TestClientSession(t *testing.T) {
	s := startServer(t)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := newSession(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.close(nil)
	ctx := context.Background()
	var b Bound
	if err := sess.call(ctx, MethodBind, &BindReq{Name: NameRef{Name: path("svc", "web"), Ns: "default"}}, &b, &BindFailure{}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = sess.call(short, MethodBind, &BindReq{Name: NameRef{Stamp: b.Stamp, Name: path("svc", "web"), Ns: "default"}}, &Bound{}, &BindFailure{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("long poll past its deadline: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		sess.mu.Lock()
		n := len(sess.calls)
		sess.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tags still reserved after the discard", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var d DtabRef
	if err := sess.call(ctx, MethodDtab, &DtabReq{Ns: "default"}, &d, &DtabFailure{}); err != nil || d.Dtab != "/svc=>/#/io.l5d.fs" {
		t.Fatalf("dtab after a discard: %v %+v", err, d)
	}
	if err := sess.ping(time.Second); err != nil {
		t.Fatal(err)
	}
	// The session ends with the server: calls fail instead of hanging.
	s.srv.Close()
	err = sess.call(ctx, MethodBind, &BindReq{Name: NameRef{Stamp: b.Stamp, Name: path("svc", "web"), Ns: "default"}}, &Bound{}, &BindFailure{})
	if err == nil {
		t.Fatalf("call on a closed server: %v", err)
	}
}
