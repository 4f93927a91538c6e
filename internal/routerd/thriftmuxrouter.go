package routerd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/proxy/accept"
	"github.com/linnet-mesh/linnet/internal/proxy/mux"
	"github.com/linnet-mesh/linnet/internal/proxy/thrift"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// The thriftmux protocol and its default server port (spec/config.md §2).
const (
	ProtocolThriftMux    = "thriftmux"
	DefaultThriftMuxPort = 4144
)

func init() {
	config.Register[Router](ProtocolThriftMux, func() Router { return new(ThriftMuxRouter) })
}

// ThriftMuxRouter is a `protocol: thriftmux` router (spec/config.md §4.5,
// experimental in Linkerd): Thrift calls carried in Finagle Mux sessions,
// many in flight per session. A call's name is the thrift router's:
// dstPrefix, then the Tdispatch destination when set, then the method
// name with thriftMethodInDst; the Tdispatch dtab is the call's local
// dtab. Servers also accept plain framed Thrift clients on the same port
// (Finagle's downgrade); endpoints that do not speak Mux are called in
// plain framed Thrift.
type ThriftMuxRouter struct {
	ThriftRouterCommon `yaml:",inline"`
	Servers            []ThriftMuxServer             `yaml:"servers" config:"required"`
	Client             Policy[ThriftMuxClientParams] `yaml:"client"`
	Service            Policy[ThriftServiceParams]   `yaml:"service"`
}

var thriftMuxKind = thriftRouterKind{
	protocol:       ProtocolThriftMux,
	experimental:   true,
	identifierHint: "`identifier` does not apply to thriftmux routers: a call's name is dstPrefix, then its Mux destination, then its method name with thriftMethodInDst: true",
}

// ServerList implements Router.
func (r *ThriftMuxRouter) ServerList() []*ServerCommon { return thriftServerList(r.Servers) }

// Validate implements config.Validator.
func (r *ThriftMuxRouter) Validate() error {
	return r.validate(thriftMuxKind, len(r.Servers), func() error {
		for _, b := range clientBlocks(&r.Client) {
			if b.raw != nil && b.params.ThriftProtocol != "" {
				return config.FieldError(b.where+".thriftProtocol", "thriftProtocol is not supported per prefix on thriftmux routers; set it on the router")
			}
		}
		return nil
	})
}

// UnknownKeyHint implements config.KeyHinter.
func (r *ThriftMuxRouter) UnknownKeyHint(key string) string { return thriftMuxKind.unknownKeyHint(key) }

// ThriftMuxServer is a server of a thriftmux router: Mux frames every
// message, so it has no thriftFramed.
type ThriftMuxServer struct {
	ThriftServerCommon `yaml:",inline"`
}

// SetDefaults implements config.Defaulter.
func (s *ThriftMuxServer) SetDefaults() { s.Port = DefaultThriftMuxPort }

// thriftServer: Mux frames every message, and plain Thrift clients of a
// thriftmux server must be framed.
func (s *ThriftMuxServer) thriftServer() (*ThriftServerCommon, bool) {
	return &s.ThriftServerCommon, true
}

// UnknownKeyHint implements config.KeyHinter.
func (s *ThriftMuxServer) UnknownKeyHint(key string) string {
	if key == "thriftFramed" {
		return "`thriftFramed` applies to thrift routers: Mux frames every message, and plain Thrift clients of a thriftmux server must be framed"
	}
	return thriftServerKeyHint(key, ProtocolThriftMux)
}

// ThriftMuxClientParams are the client keys of a thriftmux router; its
// thriftProtocol is that of plain Thrift endpoints.
type ThriftMuxClientParams struct {
	ThriftClientCommon `yaml:",inline"`
}

// UnknownKeyHint implements config.KeyHinter.
func (c *ThriftMuxClientParams) UnknownKeyHint(key string) string {
	switch key {
	case "thriftFramed", "attemptTTwitterUpgrade":
		return "`" + key + "` applies to thrift routers: thriftmux endpoints speak Mux, or else framed Thrift"
	}
	return thriftClientKeyHint(key, ProtocolThriftMux)
}

func checkThriftMuxRouter(tr *ThriftMuxRouter) []string {
	warnings := checkRouterCommon(&tr.RouterCommon)
	for _, b := range clientBlocks(&tr.Client) {
		warnings = append(warnings, checkClientParams(b.where, &b.params.ClientParams)...)
		pool := b.params.HostConnectionPool
		if b.raw == nil && (pool.MinSize > 0 || pool.MaxSize > 0 || pool.MaxWaiters > 0) {
			warnings = append(warnings, "client.hostConnectionPool minSize, maxSize and maxWaiters do not apply to thriftmux routers: one Mux session per endpoint carries every call")
		}
	}
	return append(warnings, checkThriftServers(tr.ServerList())...)
}

func (p *Process) startThriftMuxRouter(ctx context.Context, tr *ThriftMuxRouter, namers []naming.MountedNamer, env naming.Env) (*router.Router, admin.RouterInfo, error) {
	return p.startThrift(ctx, &tr.ThriftRouterCommon, thriftStart{
		warnings: checkThriftMuxRouter(tr),
		client:   func(id dtab.Path) ClientParams { return tr.Client.For(id).ClientParams },
		service:  func(name dtab.Path) ServiceParams { return tr.Service.For(name).ServiceParams },
		transport: func(ctx context.Context, log *slog.Logger) (thrift.TransportOptions, error) {
			gc := tr.Client.Global
			topts := thrift.TransportOptions{ // Codec: for endpoints that do not speak Mux
				Codec:       thrift.Codec{Protocol: tr.thriftProtocol(gc.ThriftProtocol), Framed: true},
				IdleTimeout: clientIdleTime(gc.HostConnectionPool.IdleTimeMs, gc.ClientSession),
			}
			if err := checkClientTLS(&tr.Client, func(c *ThriftMuxClientParams) *ClientTLS { return c.TLS }, nil); err != nil {
				return thrift.TransportOptions{}, err
			}
			if policyHasTLS(&tr.Client, gc.TLS) {
				// As on thrift routers: chosen per call by its bound name,
				// one session per endpoint per configuration.
				topts.TLSFor = newClientTLSChooser(ctx, func(id dtab.Path) *ClientTLS { return tr.Client.For(id).TLS }, nil, log)
			}
			return topts, nil
		},
		newTransport: func(addr string, o thrift.TransportOptions, log *slog.Logger) router.Transport {
			return newMuxTransport(addr, o, log)
		},
		servers: thriftServers(tr.Servers),
		serve: func(srv *thrift.Server, s *ThriftServerCommon, idle time.Duration, log *slog.Logger) server {
			return newMuxServer(srv, s.ClearContext, idle, log)
		},
	}, namers, env)
}

// firstFrameTimeout bounds the wait for a new connection's first frame.
const firstFrameTimeout = 10 * time.Second

// muxServer serves a thriftmux router's listener: Mux sessions, each
// dispatch routed by the thrift server's Call, and plain framed Thrift
// connections handed to the thrift server itself.
type muxServer struct {
	thrift       *thrift.Server
	clearContext bool
	idle         time.Duration
	log          *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	sessions map[*mux.ServerSession]net.Conn
	conns    map[net.Conn]struct{} // accepted, kind not known yet
	draining bool
	wg       sync.WaitGroup
}

func newMuxServer(srv *thrift.Server, clearContext bool, idle time.Duration, log *slog.Logger) *muxServer {
	ctx, cancel := context.WithCancel(context.Background())
	return &muxServer{thrift: srv, clearContext: clearContext, idle: idle, log: log, ctx: ctx, cancel: cancel,
		lns: map[net.Listener]struct{}{}, sessions: map[*mux.ServerSession]net.Conn{}, conns: map[net.Conn]struct{}{}}
}

// Serve accepts connections on ln until Shutdown or Close.
func (s *muxServer) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		_ = ln.Close()
		return http.ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	return accept.Loop(ln, accept.Doubling, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.draining
	}, func(nc net.Conn) bool {
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			_ = nc.Close()
			return false
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(nc)
		return true
	})
}

func (s *muxServer) serveConn(nc net.Conn) {
	defer s.wg.Done()
	br := bufio.NewReaderSize(nc, 16<<10)
	_ = nc.SetReadDeadline(time.Now().Add(firstFrameTimeout))
	head, err := br.Peek(6)
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
	if err != nil {
		_ = nc.Close()
		return
	}
	_ = nc.SetReadDeadline(time.Time{})
	if isThriftFrame(head[4:]) {
		// Finagle's downgrade: a plain framed Thrift client.
		s.thrift.ServeConn(nc, br)
		return
	}
	defer nc.Close()
	first, err := mux.ReadFrame(br)
	if err != nil {
		s.log.Debug("closing mux session", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	ss := mux.NewServerSession(nc, s.handler(nc), 0, s.idle)
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return
	}
	s.sessions[ss] = nc
	s.mu.Unlock()
	err = ss.Serve(s.ctx, br, first)
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
		s.log.Debug("closing mux session", "remote", nc.RemoteAddr().String(), "err", err)
	}
}

// isThriftFrame reports whether a frame's first bytes begin a strict
// binary or a compact Thrift message (not a Mux message: as Mux, the
// first is an Rerr, which no client sends first but the "tinit check"
// marker with tag 1; the second type -126 does not exist).
func isThriftFrame(b []byte) bool {
	return len(b) >= 2 && ((b[0] == 0x80 && b[1] == 0x01) || b[0] == 0x82)
}

// handler returns the Mux handler of a session on nc: the dispatch's
// payload is a Thrift call, routed by the thrift server.
func (s *muxServer) handler(nc net.Conn) mux.Handler {
	proto := s.thrift.Protocol()
	return func(ctx context.Context, d *mux.Dispatch) (byte, []byte) {
		h, err := thrift.ParseHeader(proto, d.Body)
		if err != nil {
			return mux.StatusError, []byte(err.Error())
		}
		msg := &thrift.Message{Header: h, Bytes: d.Body, TTwitter: dispatchHeader(d)}
		if !s.clearContext {
			for _, c := range d.Contexts {
				if string(c.Key) == mux.DeadlineKey {
					if dl, ok := mux.ParseDeadline(c.Value); ok {
						ctx = context.WithValue(ctx, deadlineKey{}, dl)
					}
				}
			}
		}
		reply, err := s.thrift.Call(ctx, nc, msg)
		if err != nil && ctx.Err() != nil {
			return mux.StatusError, []byte(err.Error()) // discarded: not written
		}
		return mux.StatusOK, reply
	}
}

// deadlineKey carries an inbound Finagle Deadline to the client side.
type deadlineKey struct{}

// dispatchHeader expresses a Tdispatch's routing context as the TTwitter
// RequestHeader the thrift server reads (and trims with clearContext):
// dst as dest, the dtab as delegations, the trace context as the trace,
// other contexts kept to be passed on.
func dispatchHeader(d *mux.Dispatch) *thrift.RequestHeader {
	h := &thrift.RequestHeader{Dest: d.Dst, HasDest: d.Dst != ""}
	for _, e := range d.Dtab {
		h.Delegations = append(h.Delegations, thrift.Delegation{Src: e.Prefix, Dst: e.Dst})
	}
	for _, c := range d.Contexts {
		switch string(c.Key) {
		case mux.TraceContextKey:
			if t, ok := proxy.ParseTrace(base64.StdEncoding.EncodeToString(c.Value)); ok {
				h.SpanID, h.ParentSpanID, h.HasParent = int64(t.SpanID), int64(t.ParentID), true
				h.TraceID, h.TraceIDHigh, h.Flags = int64(t.TraceID), int64(t.TraceIDHigh), int64(t.Flags)
			}
		case mux.DeadlineKey:
		default:
			h.Contexts = append(h.Contexts, thrift.RequestContext{Key: c.Key, Value: c.Value})
		}
	}
	return h
}

// stopAccepting marks the server draining and closes its listeners and
// the connections whose kind is not known yet (s.mu held).
func (s *muxServer) stopAccepting() {
	s.draining = true
	for ln := range s.lns {
		_ = ln.Close()
	}
	for nc := range s.conns {
		_ = nc.Close()
	}
}

// Shutdown stops accepting, asks every session to drain (Tdrain) and
// waits for the sessions and the plain Thrift connections to finish
// their calls until ctx is done; then it closes what is left.
func (s *muxServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopAccepting()
	sessions := make([]*mux.ServerSession, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.Drain()
	}
	terr := s.thrift.Shutdown(ctx)
	if err := thrift.AwaitDrain(ctx, &s.wg, func() { _ = s.Close() }); err != nil {
		return err
	}
	s.cancel()
	return terr
}

// Close closes every listener, session and connection at once.
func (s *muxServer) Close() error {
	s.mu.Lock()
	s.stopAccepting()
	for _, nc := range s.sessions {
		_ = nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	return s.thrift.Close()
}

// muxTransport is the client-tier transport of one endpoint: one Mux
// session per TLS configuration (nil: plain TCP) carrying every call with
// it (redialled when it ends or the endpoint drains it), or plain framed
// Thrift when the endpoint does not speak Mux.
type muxTransport struct {
	addr  string
	o     thrift.TransportOptions
	plain *thrift.Transport
	log   *slog.Logger

	mu  sync.Mutex
	eps map[*tls.Config]*muxEndpoint
}

// muxEndpoint is the endpoint as dialled with one TLS configuration.
type muxEndpoint struct {
	lock chan struct{} // held while dialling a session

	// guarded by muxTransport.mu
	session *mux.ClientSession
	notMux  bool
}

// muxProbeTimeout bounds the wait for an endpoint's answer to the Mux
// handshake; past it, the endpoint is taken for a plain Thrift server.
const muxProbeTimeout = time.Second

func newMuxTransport(addr string, o thrift.TransportOptions, log *slog.Logger) *muxTransport {
	return &muxTransport{addr: addr, o: o, plain: thrift.NewTransport(addr, o), log: log,
		eps: map[*tls.Config]*muxEndpoint{}}
}

// muxError is an endpoint's Rdispatch error status, or its Rerr.
type muxError struct{ addr, message string }

func (e *muxError) Error() string {
	return fmt.Sprintf("thriftmux endpoint %s answered an error: %s", e.addr, e.message)
}

func (e *muxError) FailureKind() telemetry.FailureKind { return telemetry.FailureBadResponse }

// nackError is an endpoint's nack: the call was not processed, so that
// the router may requeue it.
type nackError struct{ addr string }

func (e *nackError) Error() string {
	return "thriftmux endpoint " + e.addr + " refused the call (nack)"
}
func (e *nackError) NotWritten() bool                 { return true }
func (*nackError) FailureKind() telemetry.FailureKind { return telemetry.FailureUnknown }

// sessionError is a session that ended before the call was answered.
type sessionError struct {
	addr    string
	err     error
	written bool
}

func (e *sessionError) Error() string {
	return fmt.Sprintf("thriftmux endpoint %s: %v", e.addr, e.err)
}
func (e *sessionError) Unwrap() error                    { return e.err }
func (e *sessionError) NotWritten() bool                 { return !e.written }
func (*sessionError) FailureKind() telemetry.FailureKind { return telemetry.FailureReset }

// RoundTrip implements http.RoundTripper.
func (t *muxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	msg := thrift.MessageFrom(req.Context())
	if msg == nil {
		return nil, errors.New("thriftmux transport: request carries no thrift message")
	}
	var cfg *tls.Config
	if t.o.TLSFor != nil {
		var err error
		if cfg, err = t.o.TLSFor(req); err != nil {
			return nil, fmt.Errorf("client TLS for %s: %w", req.Header.Get(proxy.HeaderDstClient), err)
		}
	}
	s, err := t.get(req.Context(), cfg)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return t.plain.RoundTrip(req)
	}
	d := t.dispatch(req, msg)
	status, reply, err := s.Dispatch(req.Context(), d, msg.Bytes)
	if err != nil {
		var se *mux.SessionError
		switch {
		case errors.As(err, &se):
			return nil, &sessionError{addr: t.addr, err: se.Err, written: se.Written}
		case errors.Is(err, mux.ErrDraining):
			return nil, &nackError{addr: t.addr}
		}
		return nil, err
	}
	switch status {
	case mux.StatusOK:
	case mux.StatusNack:
		return nil, &nackError{addr: t.addr}
	default:
		return nil, &muxError{addr: t.addr, message: string(reply)}
	}
	if msg.Type == thrift.Oneway {
		reply = nil
	} else if h, err := thrift.ParseHeader(payloadProtocol(msg.Bytes), reply); err != nil {
		return nil, &thrift.ResponseError{Addr: t.addr, Reason: "reading the reply to " + msg.Name + ": " + err.Error()}
	} else if h.SeqID != msg.SeqID || h.Name != msg.Name {
		return nil, &thrift.ResponseError{Addr: t.addr, Reason: fmt.Sprintf("reply to %s is %s #%d, want sequence id %d", msg.Name, h.Name, h.SeqID, msg.SeqID)}
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{},
		Body:          io.NopCloser(bytes.NewReader(reply)),
		ContentLength: int64(len(reply)),
		Request:       req,
	}, nil
}

// payloadProtocol is the protocol of a Thrift call (a reply is in the
// call's): compact messages begin with 0x82, binary ones do not.
func payloadProtocol(call []byte) thrift.Protocol {
	if len(call) > 0 && call[0] == 0x82 {
		return thrift.Compact
	}
	return thrift.Binary
}

// dispatch is the Tdispatch header of a call: the trace the router's
// tracer wrote on the request, the deadline (the inbound one, shortened
// by the call's own), and the inbound call's destination, dtab and other
// contexts (as a TTwitter header would carry them on).
func (t *muxTransport) dispatch(req *http.Request, msg *thrift.Message) *mux.Dispatch {
	d := new(mux.Dispatch)
	if tc, ok := proxy.ParseTrace(req.Header.Get(proxy.HeaderCtxTrace)); ok {
		b, _ := base64.StdEncoding.DecodeString(tc.Encode())
		d.Contexts = append(d.Contexts, mux.Context{Key: []byte(mux.TraceContextKey), Value: b})
	}
	dl, has := req.Context().Value(deadlineKey{}).(mux.Deadline)
	if cd, ok := req.Context().Deadline(); ok && (!has || cd.Before(dl.Deadline)) {
		dl, has = mux.Deadline{Deadline: cd}, true
	}
	if has {
		dl.Timestamp = time.Now()
		d.Contexts = append(d.Contexts, mux.Context{Key: []byte(mux.DeadlineKey), Value: mux.EncodeDeadline(dl)})
	}
	if h := msg.TTwitter; h != nil {
		for _, c := range h.Contexts {
			d.Contexts = append(d.Contexts, mux.Context{Key: c.Key, Value: c.Value})
		}
		if h.HasDest {
			d.Dst = h.Dest
		}
		for _, e := range h.Delegations {
			d.Dtab = append(d.Dtab, mux.Dentry{Prefix: e.Src, Dst: e.Dst})
		}
	}
	return d
}

// endpoint returns the endpoint as dialled with cfg.
func (t *muxTransport) endpoint(cfg *tls.Config) *muxEndpoint {
	t.mu.Lock()
	defer t.mu.Unlock()
	ep := t.eps[cfg]
	if ep == nil {
		ep = &muxEndpoint{lock: make(chan struct{}, 1)}
		t.eps[cfg] = ep
	}
	return ep
}

// muxConnectTimeout bounds a session's dial, TLS handshake and Mux
// handshake (the request's context too).
const muxConnectTimeout = 10 * time.Second

// get returns the endpoint's session with cfg, dialling one if needed;
// nil when the endpoint speaks plain Thrift.
func (t *muxTransport) get(ctx context.Context, cfg *tls.Config) (*mux.ClientSession, error) {
	ep := t.endpoint(cfg)
	select {
	case ep.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-ep.lock }()
	t.mu.Lock()
	s, notMux := ep.session, ep.notMux
	t.mu.Unlock()
	switch {
	case notMux:
		return nil, nil
	case s != nil && s.Usable():
		return s, nil
	}
	if s != nil {
		go s.Close() // drained by the endpoint: its calls in flight finish
	}
	dctx, cancel := context.WithTimeout(ctx, muxConnectTimeout)
	defer cancel()
	nc, err := t.dial(dctx, cfg)
	if err != nil {
		return nil, err // a dial or TLS handshake error: never written, requeued
	}
	// A mux server answers the handshake at once, from its session
	// layer; a plain Thrift server may instead wait for the rest of what
	// it takes for a message. Either way, plain framed Thrift is safe to
	// fall back on: a Finagle thriftmux server accepts it too.
	hctx, hcancel := context.WithTimeout(dctx, muxProbeTimeout)
	defer hcancel()
	s, err = mux.Handshake(hctx, nc)
	if err != nil && hctx.Err() != nil && dctx.Err() == nil {
		err = fmt.Errorf("%w: no answer to the handshake within %v", mux.ErrNotMux, muxProbeTimeout)
	}
	if errors.Is(err, mux.ErrNotMux) {
		_ = nc.Close()
		t.log.Debug("endpoint does not speak mux: plain thrift", "addr", t.addr, "tls", cfg != nil, "why", err)
		t.mu.Lock()
		ep.notMux, ep.session = true, nil
		t.mu.Unlock()
		return nil, nil
	}
	if err != nil {
		_ = nc.Close()
		return nil, &sessionError{addr: t.addr, err: err}
	}
	t.mu.Lock()
	ep.session = s
	t.mu.Unlock()
	return s, nil
}

// dial opens a connection to the endpoint: TCP, then the TLS handshake
// with cfg when set. Every failure is a *net.OpError with Op "dial": no
// call was written, so the router may requeue it.
func (t *muxTransport) dial(ctx context.Context, cfg *tls.Config) (net.Conn, error) {
	var dialer net.Dialer
	nc, err := dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	if t.o.WrapConn != nil {
		nc = t.o.WrapConn(nc)
	}
	if cfg == nil {
		return nc, nil
	}
	tc, err := tlsconf.DialTLS(ctx, dialedConn{nc}, "tcp", t.addr, cfg, muxConnectTimeout)
	if err != nil {
		return nil, err
	}
	return tc, nil
}

// dialedConn is a tlsconf.Dialer of a connection already open.
type dialedConn struct{ nc net.Conn }

func (d dialedConn) DialContext(context.Context, string, string) (net.Conn, error) { return d.nc, nil }

// CloseIdleConnections implements router.Transport: a session with no
// call in flight is closed (the next call dials another).
func (t *muxTransport) CloseIdleConnections() {
	var idle []*mux.ClientSession
	t.mu.Lock()
	for _, ep := range t.eps { // an entry of a configuration replaced by a reload stays: a few words
		if s := ep.session; s != nil && s.Idle() {
			ep.session = nil
			idle = append(idle, s)
		}
	}
	t.mu.Unlock()
	for _, s := range idle {
		_ = s.Close()
	}
	t.plain.CloseIdleConnections()
}
