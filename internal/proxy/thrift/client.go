package thrift

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
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
	// ConnectTimeout bounds a dial, its TLS handshake and its TTwitter
	// upgrade (default 10s; the request's context too).
	ConnectTimeout time.Duration
	// WrapConn, when set, wraps each new connection (connection metrics).
	WrapConn func(net.Conn) net.Conn
	// TLSFor, when set, chooses the TLS configuration of a call (nil:
	// plain TCP), e.g. by the call's bound name (client tls). Connections
	// are pooled per distinct *tls.Config, so it must return the same
	// pointer for the same configuration.
	TLSFor func(*http.Request) (*tls.Config, error)
	// TTwitter asks each new connection for the TTwitter upgrade
	// (attemptTTwitterUpgrade). Calls on an upgraded connection carry a
	// RequestHeader: the trace of the request's l5d-ctx-trace header, and
	// the client id, contexts, dest and delegations of the inbound call's
	// header (Message.TTwitter). An endpoint that answers the upgrade with
	// an exception is spoken to in plain Thrift from then on (with that
	// codec).
	TTwitter bool
	// SpeakFor, when set, chooses how a call is spoken to the endpoint
	// (codec and TTwitter upgrade), e.g. by the call's bound name (per
	// prefix thriftFramed, thriftProtocol and attemptTTwitterUpgrade);
	// otherwise Codec and TTwitter apply. Connections are pooled per
	// distinct Speech.
	SpeakFor func(*http.Request) Speech
}

// Speech is how a connection to an endpoint speaks: its codec and
// whether it asks for the TTwitter upgrade.
type Speech struct {
	Codec    Codec
	TTwitter bool
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

	// plain lists the codecs with which the endpoint refused the TTwitter
	// upgrade (under mu).
	plain map[Codec]bool
}

// NewTransport returns the transport of the endpoint addr ("host:port").
func NewTransport(addr string, o TransportOptions) *Transport {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.MaxIdle <= 0 {
		o.MaxIdle = 64
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second // bounds a TLS handshake or an upgrade
	}
	return &Transport{addr: addr, o: o}
}

type conn struct {
	cfg      *tls.Config // the TLS configuration it was dialled with (nil: plain TCP)
	speech   Speech      // what it was dialled to speak
	ttwitter bool        // upgraded to TTwitter
	nc       net.Conn
	br       *bufio.Reader
	raw      syscall.RawConn // the TCP socket under any wrapper, for alive
	used     time.Time       // when it was last put back
	reused   bool            // taken from the pool
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
	var cfg *tls.Config
	if t.o.TLSFor != nil {
		var err error
		if cfg, err = t.o.TLSFor(req); err != nil {
			return nil, fmt.Errorf("client TLS for %s: %w", req.Header.Get(proxy.HeaderDstClient), err)
		}
	}
	sp := Speech{Codec: t.o.Codec, TTwitter: t.o.TTwitter}
	if t.o.SpeakFor != nil {
		sp = t.o.SpeakFor(req)
	}
	c, err := t.get(ctx, cfg, sp)
	if err != nil {
		return nil, err
	}
	codec := sp.Codec
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
	var werr error
	if c.ttwitter {
		werr = codec.writeHeaded(c.nc, AppendRequestHeader(nil, codec.Protocol, outboundHeader(req.Header, msg.TTwitter)), msg.Bytes)
	} else {
		werr = codec.WriteMessage(c.nc, msg.Bytes)
	}
	if err := werr; err != nil {
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
	_, err = c.br.Peek(1)
	if err != nil && msg.isOneway() && c.br.Buffered() == 0 {
		stop()
		_ = c.nc.SetDeadline(time.Time{})
		t.put(c)
		return newResponse(req, nil), nil
	}
	var reply *Message
	if c.ttwitter {
		_, reply, err = codec.ReadHeaded(c.br) // the ResponseHeader is not forwarded
	} else {
		reply, err = codec.ReadMessage(c.br)
	}
	if err != nil {
		reset := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isNetErr(err)
		reason := "reading the reply to " + msg.Name + ": " + err.Error()
		if err == io.EOF && !c.reused {
			// A new connection closed without a byte of reply: most often
			// an endpoint that cannot read what it was sent.
			reason += fmt.Sprintf(" (the endpoint closed the connection without replying: does it take %s %s messages? client thriftFramed, thriftProtocol)", framing(codec.Framed), codec.Protocol)
		}
		return fail(&ResponseError{Addr: t.addr, Reason: reason, Reset: reset})
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

// framing names a transport as thriftFramed chooses it.
func framing(framed bool) string {
	if framed {
		return "framed"
	}
	return "buffered (unframed)"
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
func (t *Transport) get(ctx context.Context, cfg *tls.Config, sp Speech) (*conn, error) {
	now := time.Now()
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, net.ErrClosed
		}
		i := len(t.idle) - 1
		for i >= 0 && (t.idle[i].cfg != cfg || t.idle[i].speech != sp) {
			i--
		}
		if i < 0 {
			t.mu.Unlock()
			break
		}
		c := t.idle[i]
		t.idle = append(t.idle[:i], t.idle[i+1:]...)
		t.mu.Unlock()
		if now.Sub(c.used) < t.o.IdleTimeout && alive(c) {
			c.reused = true
			return c, nil
		}
		_ = c.nc.Close()
	}
	return t.dial(ctx, cfg, sp)
}

// dial opens a connection: TCP, the TLS handshake with cfg, and the
// TTwitter upgrade when asked for. Every failure is a *net.OpError with
// Op "dial": no call was written, so the router may requeue it.
func (t *Transport) dial(ctx context.Context, cfg *tls.Config, sp Speech) (*conn, error) {
	d := &net.Dialer{Timeout: t.o.ConnectTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	c := &conn{cfg: cfg, speech: sp}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn()
	}
	if t.o.WrapConn != nil {
		nc = t.o.WrapConn(nc)
	}
	if cfg != nil {
		if nc, err = tlsconf.DialTLS(ctx, connDialer{nc}, "tcp", t.addr, cfg, t.o.ConnectTimeout); err != nil {
			return nil, err
		}
	}
	c.nc, c.br = nc, bufio.NewReaderSize(nc, 16<<10)
	t.mu.Lock()
	plain := t.plain[sp.Codec]
	t.mu.Unlock()
	if sp.TTwitter && !plain {
		if err := t.upgrade(ctx, c); err != nil {
			_ = nc.Close()
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: nc.RemoteAddr(), Err: err}
		}
	}
	return c, nil
}

// upgrade sends the TTwitter upgrade call on a new connection and reads
// the answer: a reply upgrades the connection, an exception (a server
// that does not know the method) leaves it plain and marks the endpoint
// plain for later connections.
func (t *Transport) upgrade(ctx context.Context, c *conn) error {
	deadline := time.Now().Add(t.o.ConnectTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetDeadline(deadline)
	defer func() { _ = c.nc.SetDeadline(time.Time{}) }()
	codec := c.speech.Codec
	if err := codec.WriteMessage(c.nc, AppendUpgradeCall(nil, codec.Protocol, 0)); err != nil {
		return fmt.Errorf("TTwitter upgrade: %w", err)
	}
	reply, err := codec.ReadMessage(c.br)
	if err != nil {
		return fmt.Errorf("TTwitter upgrade: reading the answer: %w", err)
	}
	switch {
	case reply.Name != UpgradeMethod || reply.SeqID != 0:
		return fmt.Errorf("TTwitter upgrade: answered with %s %q (sequence id %d)", reply.Type, reply.Name, reply.SeqID)
	case reply.Type == Reply:
		c.ttwitter = true
	case reply.Type == Exception:
		t.mu.Lock()
		if t.plain == nil {
			t.plain = map[Codec]bool{}
		}
		t.plain[codec] = true
		t.mu.Unlock()
	default:
		return fmt.Errorf("TTwitter upgrade: answered with a %s message", reply.Type)
	}
	return nil
}

// connDialer hands an open connection to tlsconf.DialTLS.
type connDialer struct{ nc net.Conn }

func (d connDialer) DialContext(context.Context, string, string) (net.Conn, error) { return d.nc, nil }

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
