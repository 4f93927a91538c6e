package thrift

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// TransportOptions configure the client side of a thrift router.
type TransportOptions struct {
	// Codec is how calls and replies are written to endpoints (client
	// thriftFramed and thriftProtocol).
	Codec Codec
	// IdleTimeout closes a pooled connection unused for this long
	// (default 60s).
	IdleTimeout time.Duration
	// MaxIdle bounds the idle connections kept per endpoint (default 64).
	MaxIdle int
	// ConnectTimeout bounds a dial (0: only the request's context).
	ConnectTimeout time.Duration
	// WrapConn, when set, wraps each new connection (connection metrics).
	WrapConn func(net.Conn) net.Conn
}

// Transport forwards calls to one endpoint over pooled connections, one
// call in flight per connection as plain Thrift requires. It is the
// router's client-tier transport: RoundTrip takes the call from the
// request's context (WithMessage) and returns the reply as the response
// body (a oneway call returns an empty body as soon as it is written).
type Transport struct {
	addr string
	o    TransportOptions

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
}

// NewTransport returns the transport of the endpoint addr ("host:port").
func NewTransport(addr string, o TransportOptions) *Transport {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.MaxIdle <= 0 {
		o.MaxIdle = 64
	}
	return &Transport{addr: addr, o: o}
}

type conn struct {
	nc     net.Conn
	br     *bufio.Reader
	raw    syscall.RawConn // the TCP socket under any wrapper, for alive
	used   time.Time       // when it was last put back
	reused bool            // taken from the pool
}

// ResponseError says an endpoint's answer to a call was not its reply:
// a bad message, another sequence id, or the connection closed first.
type ResponseError struct {
	Addr   string
	Reason string
	Reset  bool // the connection broke (not a malformed reply)

	notWritten bool
}

// NotWritten reports that the endpoint did not take the call (a write
// failed), so that the router may resend it (middleware.IsNotWritten).
func (e *ResponseError) NotWritten() bool { return e.notWritten }

func (e *ResponseError) Error() string {
	return fmt.Sprintf("thrift endpoint %s: %s", e.Addr, e.Reason)
}

// FailureKind implements the router's failure classification.
func (e *ResponseError) FailureKind() telemetry.FailureKind {
	if e.Reset {
		return telemetry.FailureReset
	}
	return telemetry.FailureBadResponse
}

// errNoMessage is a request that carries no call (a programming error).
var errNoMessage = errors.New("thrift transport: request carries no thrift message")

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	msg := MessageFrom(req.Context())
	if msg == nil {
		return nil, errNoMessage
	}
	ctx := req.Context()
	c, err := t.get(ctx)
	if err != nil {
		return nil, err
	}
	// A cancelled or timed-out call unblocks its reads and writes; the
	// connection is then closed, since a reply may still come on it.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = c.nc.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	if err := t.o.Codec.WriteMessage(c.nc, msg.Bytes); err != nil {
		// The endpoint closed the connection without reading the call
		// (a pooled connection it dropped, or it went away): it was not
		// processed, so the router may requeue it to another pick. The
		// other pooled connections are likely gone too.
		if c.reused {
			t.CloseIdleConnections()
		}
		return fail(&ResponseError{Addr: t.addr, Reason: "writing the call: " + err.Error(), Reset: true, notWritten: true})
	}
	if msg.Type == Oneway {
		if !stop() {
			_ = c.nc.Close()
			return nil, context.Cause(ctx)
		}
		t.put(c)
		return newResponse(req, nil), nil
	}
	// Wait for the reply's first byte before reading it, so that a call
	// the server finds to be oneway (Message.isOneway) stops waiting with
	// the connection still in step.
	if _, err := c.br.Peek(1); err != nil && msg.isOneway() && c.br.Buffered() == 0 {
		stop()
		_ = c.nc.SetDeadline(time.Time{})
		t.put(c)
		return newResponse(req, nil), nil
	}
	reply, err := t.o.Codec.ReadMessage(c.br)
	if err != nil {
		reset := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isNetErr(err)
		return fail(&ResponseError{Addr: t.addr, Reason: "reading the reply to " + msg.Name + ": " + err.Error(), Reset: reset})
	}
	switch {
	case reply.Type != Reply && reply.Type != Exception:
		return fail(&ResponseError{Addr: t.addr, Reason: fmt.Sprintf("answered %s with a %s message", msg.Name, reply.Type)})
	case reply.SeqID != msg.SeqID:
		return fail(&ResponseError{Addr: t.addr, Reason: fmt.Sprintf("reply to %s has sequence id %d, want %d", msg.Name, reply.SeqID, msg.SeqID)})
	case reply.Name != msg.Name:
		return fail(&ResponseError{Addr: t.addr, Reason: fmt.Sprintf("reply to %s is named %q", msg.Name, reply.Name)})
	}
	if !stop() {
		_ = c.nc.Close()
		return nil, context.Cause(ctx)
	}
	t.put(c)
	return newResponse(req, reply), nil
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// ReplyBody is the body of a response the transport returns: the reply's
// encoding, readable as bytes; Message gives it without copying.
type ReplyBody struct {
	*bytes.Reader
	msg *Message
}

// Message returns the reply (nil for a oneway call).
func (b *ReplyBody) Message() *Message { return b.msg }

// Close implements io.Closer.
func (b *ReplyBody) Close() error { return nil }

func newResponse(req *http.Request, reply *Message) *http.Response {
	body := &ReplyBody{msg: reply}
	if reply != nil {
		body.Reader = bytes.NewReader(reply.Bytes)
	} else {
		body.Reader = bytes.NewReader(nil)
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        make(http.Header),
		Body:          body,
		ContentLength: int64(body.Len()),
		Request:       req,
	}
}

// get returns an idle connection that is still open, or dials one. A dial
// failure is the *net.OpError of net.Dialer (Op "dial"): the router knows
// the call was never written.
func (t *Transport) get(ctx context.Context) (*conn, error) {
	now := time.Now()
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, net.ErrClosed
		}
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		c := t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if now.Sub(c.used) < t.o.IdleTimeout && alive(c) {
			c.reused = true
			return c, nil
		}
		_ = c.nc.Close()
	}
	d := net.Dialer{Timeout: t.o.ConnectTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	c := &conn{}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn()
	}
	if t.o.WrapConn != nil {
		nc = t.o.WrapConn(nc)
	}
	c.nc, c.br = nc, bufio.NewReaderSize(nc, 16<<10)
	return c, nil
}

// alive reports whether an idle connection is still open: the endpoint
// has not closed it (a read would see EOF) nor sent anything unasked. It
// asks the socket without blocking (peekIdle); a deadline in the past
// would not do, as Go then fails the read without asking the socket.
func alive(c *conn) bool {
	if c.br.Buffered() > 0 {
		return false
	}
	return c.raw == nil || peekIdle(c.raw)
}

func (t *Transport) put(c *conn) {
	_ = c.nc.SetDeadline(time.Time{})
	c.used = time.Now()
	t.mu.Lock()
	if t.closed || len(t.idle) >= t.o.MaxIdle {
		t.mu.Unlock()
		_ = c.nc.Close()
		return
	}
	t.idle = append(t.idle, c)
	t.mu.Unlock()
}

// CloseIdleConnections closes the pooled connections.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, c := range idle {
		_ = c.nc.Close()
	}
}

// Close closes the pooled connections and refuses new calls.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
	return nil
}
