package thrift

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	athrift "github.com/apache/thrift/lib/go/thrift"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// routerFunc is a Router for tests.
type routerFunc func(*http.Request, router.Dst) (*http.Response, error)

func (f routerFunc) RoundTrip(r *http.Request, d router.Dst) (*http.Response, error) { return f(r, d) }

// echoRouter answers each call as an endpoint would, in protocol p: an
// exception message (the simplest reply) with the call's name and
// sequence id, whose text is the logical name.
func echoRouter(p Protocol) routerFunc {
	return func(r *http.Request, d router.Dst) (*http.Response, error) {
		m := MessageFrom(r.Context())
		if m == nil {
			return nil, errors.New("no message")
		}
		b := AppendException(nil, p, m.Header, "dst="+d.Path.String(), 0)
		reply, _ := ParseHeader(p, b)
		return newResponse(r, &Message{Header: reply, Bytes: b}), nil
	}
}

func startServer(t *testing.T, p ServerParams) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if p.DstPrefix == nil {
		p.DstPrefix = dtab.Path{"svc"}
	}
	s := NewServer(p)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve returned %v; want http.ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

type rawClient struct {
	net.Conn
	br *bufio.Reader
	c  Codec
}

func dialRaw(t *testing.T, addr string, c Codec) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{Conn: nc, br: bufio.NewReader(nc), c: c}
}

func (rc *rawClient) send(t *testing.T, msg []byte) {
	t.Helper()
	if err := rc.c.WriteMessage(rc, msg); err != nil {
		t.Fatal(err)
	}
}

func (rc *rawClient) recv(t *testing.T) *Message {
	t.Helper()
	m, err := rc.c.ReadMessage(rc.br)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readException decodes an exception reply with the library.
func readException(t *testing.T, p Protocol, m *Message) athrift.TApplicationException {
	t.Helper()
	buf := athrift.NewTMemoryBuffer()
	buf.Write(m.Bytes)
	var prot athrift.TProtocol = athrift.NewTBinaryProtocolConf(buf, nil)
	if p == Compact {
		prot = athrift.NewTCompactProtocolConf(buf, nil)
	}
	if _, typ, _, err := prot.ReadMessageBegin(context.Background()); err != nil || typ != athrift.EXCEPTION {
		t.Fatalf("not an exception: %v %v", typ, err)
	}
	exc := athrift.NewTApplicationException(0, "")
	if err := exc.Read(context.Background(), prot); err != nil {
		t.Fatal(err)
	}
	return exc
}

func TestServerRoutesAndAnswersErrors(t *testing.T) {
	var fail atomic.Bool
	_, addr := startServer(t, ServerParams{MethodInDst: true, Codec: Codec{Protocol: Compact, Framed: true},
		Router: routerFunc(func(r *http.Request, d router.Dst) (*http.Response, error) {
			if fail.Load() {
				return nil, &router.NoRouteError{Name: d.Path, Reason: "name resolved to nothing (neg)"}
			}
			return echoRouter(Compact)(r, d)
		})})
	rc := dialRaw(t, addr, Codec{Protocol: Compact, Framed: true})
	rc.send(t, encode(t, Compact, "getUser", athrift.CALL, 5))
	if m := rc.recv(t); m.Header != (Header{"getUser", Exception, 5}) || readException(t, Compact, m).Error() != "dst=/svc/getUser" {
		t.Errorf("reply %+v %q", m.Header, m.Bytes)
	}
	fail.Store(true)
	rc.send(t, encode(t, Compact, "getUser", athrift.CALL, 6))
	m := rc.recv(t)
	if m.Header != (Header{"getUser", Exception, 6}) {
		t.Fatalf("header %+v", m.Header)
	}
	if exc := readException(t, Compact, m); exc.TypeId() != athrift.INTERNAL_ERROR || !strings.Contains(exc.Error(), "service name: /svc/getUser") {
		t.Errorf("exception %d %q", exc.TypeId(), exc.Error())
	}
	// A reply message is not a call: answered INVALID_MESSAGE_TYPE.
	rc.send(t, encode(t, Compact, "x", athrift.REPLY, 7))
	if exc := readException(t, Compact, rc.recv(t)); exc.TypeId() != athrift.INVALID_MESSAGE_TYPE_EXCEPTION {
		t.Errorf("reply sent as a call: exception %d %q", exc.TypeId(), exc.Error())
	}
}

// A frame over the limit is answered with an exception naming the limit,
// then the connection closes (the rest of the frame is not read).
func TestServerRefusesLargeFrames(t *testing.T) {
	_, addr := startServer(t, ServerParams{Codec: Codec{Framed: true, MaxBytes: 1000}, Router: echoRouter(Binary)})
	rc := dialRaw(t, addr, Codec{Framed: true})
	msg := encode(t, Binary, "big", athrift.CALL, 3)
	hdr := binary.BigEndian.AppendUint32(nil, 5000)
	if _, err := rc.Write(append(hdr, msg[:50]...)); err != nil {
		t.Fatal(err)
	}
	m := rc.recv(t)
	exc := readException(t, Binary, m)
	if m.SeqID != 3 || exc.TypeId() != athrift.PROTOCOL_ERROR || exc.Error() != "thrift frame of 5000 bytes exceeds the limit of 1000 bytes" {
		t.Errorf("seq %d exception %d %q", m.SeqID, exc.TypeId(), exc.Error())
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Errorf("after the refusal: %v; want the connection closed", err)
	}
}

// A client that sends another message before a call's reply made that
// call oneway: the server stops waiting for its reply, answers nothing
// for it, and routes the next message.
func TestServerTreatsCallFollowedByAnotherAsOneway(t *testing.T) {
	released := make(chan string, 2)
	_, addr := startServer(t, ServerParams{Codec: Codec{Framed: true}, Router: routerFunc(func(r *http.Request, d router.Dst) (*http.Response, error) {
		m := MessageFrom(r.Context())
		if m.Name == "fireAndForget" {
			<-r.Context().Done() // an endpoint that never replies
			released <- m.Name
			if !m.isOneway() {
				t.Error("the call was cancelled without being marked oneway")
			}
			return nil, r.Context().Err()
		}
		return echoRouter(Binary)(r, d)
	})})
	rc := dialRaw(t, addr, Codec{Framed: true})
	rc.send(t, encode(t, Binary, "fireAndForget", athrift.CALL, 1))
	rc.send(t, encode(t, Binary, "next", athrift.CALL, 2))
	if m := rc.recv(t); m.Header != (Header{"next", Exception, 2}) {
		t.Errorf("got %+v; want the reply to the second call only", m.Header)
	}
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("the first call was never released")
	}
}

func TestServerMaxConcurrentRequests(t *testing.T) {
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	_, addr := startServer(t, ServerParams{Codec: Codec{Framed: true}, MaxConcurrentRequests: 1,
		Router: routerFunc(func(r *http.Request, d router.Dst) (*http.Response, error) {
			entered <- struct{}{}
			<-block
			return echoRouter(Binary)(r, d)
		})})
	a := dialRaw(t, addr, Codec{Framed: true})
	a.send(t, encode(t, Binary, "slow", athrift.CALL, 1))
	<-entered
	b := dialRaw(t, addr, Codec{Framed: true})
	b.send(t, encode(t, Binary, "other", athrift.CALL, 1))
	if exc := readException(t, Binary, b.recv(t)); !strings.Contains(exc.Error(), "maxConcurrentRequests (1)") {
		t.Errorf("over the limit: %q", exc.Error())
	}
	close(block)
	if m := a.recv(t); m.Header != (Header{"slow", Exception, 1}) {
		t.Errorf("the call within the limit got %+v", m.Header)
	}
}

// Shutdown lets a call in progress finish and closes idle connections.
func TestServerShutdownDrains(t *testing.T) {
	block := make(chan struct{})
	entered := make(chan struct{}, 1)
	s, addr := startServer(t, ServerParams{Codec: Codec{Framed: true}, Router: routerFunc(func(r *http.Request, d router.Dst) (*http.Response, error) {
		entered <- struct{}{}
		<-block
		return echoRouter(Binary)(r, d)
	})})
	busy := dialRaw(t, addr, Codec{Framed: true})
	idle := dialRaw(t, addr, Codec{Framed: true})
	busy.send(t, encode(t, Binary, "slow", athrift.CALL, 9))
	<-entered
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v; want closed", err)
	}
	close(block)
	if m := busy.recv(t); m.Header != (Header{"slow", Exception, 9}) {
		t.Errorf("in-flight call got %+v", m.Header)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return once the call finished")
	}
}

// The transport checks the reply belongs to the call, and drops pooled
// connections the endpoint closed instead of failing a call on them.
func TestTransportReplyChecksAndPool(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				c := Codec{Framed: true}
				m, err := c.ReadMessage(br)
				if err != nil {
					return
				}
				h := m.Header
				switch h.Name {
				case "wrongSeq":
					h.SeqID++
				case "wrongName":
					h.Name = "other"
				}
				_ = c.WriteMessage(nc, AppendException(nil, Binary, h, "ok", 0))
				// One call per connection: closing makes the pooled
				// connection stale.
			}()
		}
	}()
	tr := NewTransport(ln.Addr().String(), TransportOptions{Codec: Codec{Framed: true}})
	defer tr.Close()
	call := func(name string) error {
		m, err := Codec{}.ReadMessage(reader(encode(t, Binary, name, athrift.CALL, 4)))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(WithMessage(context.Background(), m), "POST", "thrift://x/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		rb := resp.Body.(*ReplyBody)
		if rb.Message().SeqID != 4 {
			t.Errorf("reply seq %d", rb.Message().SeqID)
		}
		return nil
	}
	if err := call("good"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the endpoint's close arrives
	if err := call("good"); err != nil {
		t.Errorf("a call after the endpoint closed the pooled connection: %v", err)
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (the closed one dropped, not used)", n)
	}
	for _, name := range []string{"wrongSeq", "wrongName"} {
		var re *ResponseError
		if err := call(name); !errors.As(err, &re) || re.Reset {
			t.Errorf("%s: %v; want a bad-response ResponseError", name, err)
		}
	}
}

// A message of type ONEWAY (as Java and other libraries send oneway
// calls) is routed and answered with nothing; the endpoint is not waited
// for.
func TestServerOnewayType(t *testing.T) {
	got := make(chan string, 1)
	_, addr := startServer(t, ServerParams{Codec: Codec{Framed: true}, Router: routerFunc(func(r *http.Request, d router.Dst) (*http.Response, error) {
		m := MessageFrom(r.Context())
		if m.Type == Oneway {
			got <- m.Name
			return newResponse(r, nil), nil
		}
		return echoRouter(Binary)(r, d)
	})})
	rc := dialRaw(t, addr, Codec{Framed: true})
	rc.send(t, encode(t, Binary, "log", athrift.ONEWAY, 1))
	rc.send(t, encode(t, Binary, "get", athrift.CALL, 2))
	if m := rc.recv(t); m.Header != (Header{"get", Exception, 2}) {
		t.Errorf("first message read back: %+v; want the reply to get only", m.Header)
	}
	if n := <-got; n != "log" {
		t.Errorf("oneway routed as %q", n)
	}
}

// A framed client calling an endpoint that reads unframed messages: the
// endpoint's reader names the framing, and the call's error says the
// endpoint closed a new connection without replying and what it was sent
// (not a bare EOF).
func TestTransportNamesAMismatchedEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	endpointErr := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_, err = Codec{}.ReadMessage(bufio.NewReader(nc)) // buffered binary
		endpointErr <- err
	}()
	tr := NewTransport(ln.Addr().String(), TransportOptions{Codec: Codec{Framed: true}})
	defer tr.Close()
	m, err := Codec{}.ReadMessage(reader(encode(t, Binary, "echo", athrift.CALL, 1)))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(WithMessage(context.Background(), m), "POST", "thrift://x/", nil)
	_, err = tr.RoundTrip(req)
	want := "reading the reply to echo: EOF (the endpoint closed the connection without replying: does it take framed binary messages? client thriftFramed, thriftProtocol)"
	var re *ResponseError
	if !errors.As(err, &re) || !re.Reset || !strings.Contains(err.Error(), want) {
		t.Fatalf("RoundTrip: %v\nwant a reset ResponseError with %q", err, want)
	}
	if err := <-endpointErr; err == nil || !strings.Contains(err.Error(), "followed by a binary message: the peer frames its messages (TFramedTransport)") {
		t.Fatalf("endpoint's read: %v", err)
	}
}

// A client that goes away while its call is being routed (the endpoint
// never answers; the client times out and closes): the call is cancelled
// and the connection closes with it. It used to stay open with its
// serving loop waiting for a reader that had stopped: a leaked connection
// until the idle timeout, and a Shutdown that never returned, even after
// its deadline.
func TestServerClientGoneDuringCall(t *testing.T) {
	entered := make(chan struct{}, 1)
	s, addr := startServer(t, ServerParams{Codec: Codec{Framed: true}, IdleTimeout: time.Hour, Router: routerFunc(func(r *http.Request, d router.Dst) (*http.Response, error) {
		entered <- struct{}{}
		<-r.Context().Done() // an endpoint that never answers
		return nil, r.Context().Err()
	})})
	rc := dialRaw(t, addr, Codec{Framed: true})
	rc.send(t, encode(t, Binary, "hang", athrift.CALL, 1))
	<-entered
	rc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connection(s) still served 5s after the client closed", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// syncBuffer is a log destination for tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A client without TLS on a tls server: the failed handshake is logged
// with the remote address, as an HTTP server logs its handshake errors;
// it used to close the connection without a word. A client that just
// hangs up is not logged.
func TestServerLogsFailedTLSHandshake(t *testing.T) {
	ca := tlstest.NewCA(t, "thrift")
	pair := ca.Issue("server", "localhost")
	cert, err := tls.LoadX509KeyPair(pair.CertPath, pair.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tls.NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}})
	s := NewServer(ServerParams{Codec: Codec{Framed: true}, DstPrefix: dtab.Path{"svc"}, Router: echoRouter(Binary),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		s.Close()
		<-served
	}()
	quiet := dialRaw(t, ln.Addr().String(), Codec{Framed: true})
	quiet.Close()
	plain := dialRaw(t, ln.Addr().String(), Codec{Framed: true})
	plain.send(t, encode(t, Binary, "echo", athrift.CALL, 1))
	if _, err := plain.br.ReadByte(); err == nil {
		t.Fatal("a plain client got an answer from a TLS server")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "first record does not look like a TLS handshake") {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the failed handshake; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := logs.String(); strings.Count(got, "thrift connection failed") != 1 || !strings.Contains(got, "remote=127.0.0.1:") {
		t.Fatalf("logs:\n%s\nwant one line for the plain client, with its address, none for the one that hung up", got)
	}
}
