package routerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/proxy/h2"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// checkH2Router returns warnings for the options of an h2 router that
// this version accepts but ignores harmlessly.
func checkH2Router(hr *H2Router) []string {
	var warnings []string
	if hr.H2AccessLog != "" {
		warnings = append(warnings, "h2AccessLog is not supported yet for h2 routers; no access log is written")
	}
	warnings = append(warnings, checkRouterCommon(&hr.RouterCommon)...)
	for _, b := range clientBlocks(&hr.Client) {
		warnings = append(warnings, checkClientParams(b.where, &b.params.ClientParams)...)
		warnings = append(warnings, checkClientSession(b.where, b.params.ClientSession, b.raw != nil, true)...)
		if b.perPrefix(hostConnectionPoolKey) || (b.raw == nil && b.params.HostConnectionPool != HostConnectionPool{}) {
			warnings = append(warnings, b.where+".hostConnectionPool is ignored on h2 routers: each endpoint gets one multiplexed HTTP/2 connection")
		}
		for _, key := range h2SettingsKeys {
			if b.perPrefix(key) {
				warnings = append(warnings, fmt.Sprintf("%s.%s is not supported per prefix; connections to an endpoint are shared by every name, so set it with client kind io.l5d.global", b.where, key))
			}
		}
	}
	var defaults H2Server
	defaults.SetDefaults()
	for i, s := range hr.Servers {
		if s.TimeoutMs > 0 {
			warnings = append(warnings, fmt.Sprintf("servers[%d].timeoutMs is not supported yet; use service.totalTimeoutMs", i))
		}
		warnings = append(warnings, checkServerCommon(i, &s.ServerCommon)...)
		if s.WindowUpdateRatio != defaults.WindowUpdateRatio {
			warnings = append(warnings, fmt.Sprintf("servers[%d].windowUpdateRatio is ignored: the HTTP/2 server sends WINDOW_UPDATE frames on its own schedule", i))
		}
	}
	return warnings
}

// h2SettingsKeys are the H2Settings keys of an h2 client block: applied
// router-wide (startH2Router reads them from the io.l5d.global block).
var h2SettingsKeys = []string{"headerTableBytes", "initialStreamWindowBytes", "maxFrameBytes", "maxHeaderListBytes"}

// newH2Policies is newPolicies for an h2 router: the same retries,
// timeouts, balancer, failure accrual and requeues, with the h2 and gRPC
// response classifiers.
func newH2Policies(hr *H2Router, scope telemetry.Scope, warn func(string, ...any)) *policies {
	p := &policies{
		clientFor: func(id dtab.Path) ClientParams { return hr.Client.For(id).ClientParams },
		serviceFor: func(name dtab.Path) (ServiceParams, middleware.Classifier, error) {
			sp := hr.Service.For(name)
			c, err := h2Classifier(sp)
			return sp.ServiceParams, c, err
		},
		scope: scope, log: warn,
	}
	if mode, _ := forwardsClientCert(&hr.Client, hr.Client.Global.ForwardClientCert); mode == xfccByName {
		p.xfccRules = xfccRules(&hr.Client)
	}
	return p
}

// h2Classifier returns the response classifier of a service (the h2
// default, with the error, when the configured one is rejected). Retries
// of a request whose body outgrew retryBufferSize.requestBytes are
// refused by it: that body cannot be sent again.
func h2Classifier(sp H2ServiceParams) (middleware.Classifier, error) {
	rc := sp.ResponseClassifier
	c, err := h2.NewClassifier(rc.Kind, rc.SuccessStatusCodes, rc.RetryableStatusCodes)
	if err != nil {
		c, _ = h2.NewClassifier("", nil, nil)
	}
	return replayAwareClassifier{c}, err
}

// serverClassify is what an h2 server's stats count as a success: the
// router-wide service classifier (a gRPC one sees grpc-status).
func serverClassify(hr *H2Router) router.Classifier {
	sp := hr.Service.For(dtab.Path{})
	rc := sp.ResponseClassifier
	c, err := h2.NewClassifier(rc.Kind, rc.SuccessStatusCodes, rc.RetryableStatusCodes)
	if err != nil {
		return nil
	}
	if g, ok := c.(*h2.GRPCClassifier); ok {
		return g.RouterClassifier()
	}
	return func(req *http.Request, resp *http.Response, err error) bool {
		return c.Classify(req, resp, err).Success
	}
}

func (p *Process) startH2Router(ctx context.Context, hr *H2Router, namers []naming.MountedNamer, env naming.Env) (*router.Router, admin.RouterInfo, error) {
	label := hr.Label
	log := p.log.With("router", label)
	for _, w := range checkH2Router(hr) {
		log.Warn(w)
	}
	ienv := naming.InterpreterEnv{Env: env, Namers: namers, Label: label}
	ienv.Logger = log
	interp, err := hr.Interpreter.Value.NewInterpreter(ienv)
	if err != nil {
		return nil, admin.RouterInfo{}, fmt.Errorf("interpreter %s: %w", hr.Interpreter.Kind, err)
	}
	idEnv := proxy.IdentifierEnv{Ctx: ctx, Logger: log, DstPrefix: hr.DstPrefix.Path, Label: label}
	var ids proxy.Identifiers
	for i, k := range hr.Identifier {
		id, err := k.Value.NewIdentifier(idEnv)
		if err != nil {
			return nil, admin.RouterInfo{}, fmt.Errorf("identifier[%d] (%s): %w", i, k.Kind, err)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		ids = append(ids, h2.DefaultIdentifier(idEnv))
	}
	scope := telemetry.RouterScope(p.reg.Scope(), label)
	if hr.Originator {
		scope.Gauge("originator", func() float64 { return 1 })
	}
	gc := hr.Client.Global
	if err := checkClientTLS(&hr.Client, func(c *H2ClientParams) *ClientTLS { return c.TLS }, alpnH2Client); err != nil {
		return nil, admin.RouterInfo{}, err
	}
	topts := h2.TransportOptions{
		MaxFrameBytes: uint32(gc.MaxFrameBytes), HeaderTableBytes: uint32(gc.HeaderTableBytes),
		MaxHeaderListBytes: uint32(gc.MaxHeaderListBytes), InitialStreamWindowBytes: gc.InitialStreamWindowBytes,
		// hostConnectionPool does not apply to h2 (warned): the session's
		// idle time alone bounds an idle connection.
		IdleTimeout: clientIdleTime(0, gc.ClientSession),
	}
	if policyHasTLS(&hr.Client, hr.Client.Global.TLS) {
		// Client TLS belongs to the bound name (its commonName may use
		// the {vars} of an io.l5d.static prefix): chosen per request.
		topts.TLSFor = newClientTLSChooser(ctx, func(id dtab.Path) *ClientTLS { return hr.Client.For(id).TLS }, alpnH2Client, log)
	}
	pol := newH2Policies(hr, scope, log.Warn)
	conns := new(endpointConns)
	tr, err := p.tracers.NewTracer(telemetry.TracerOptions{Router: label, Propagator: hr.TracePropagator.Kind})
	if err != nil {
		return nil, admin.RouterInfo{}, fmt.Errorf("tracePropagator: %w", err)
	}
	rt := router.New(router.Params{
		Label:          label,
		Dtab:           hr.Dtab.Dtab,
		Interpreter:    interp,
		BindingTimeout: time.Duration(hr.BindingTimeoutMs) * time.Millisecond,
		IdleTTL:        time.Duration(hr.BindingCache.IdleTTLSecs) * time.Second,
		Scope:          scope,
		Service: func(name dtab.Path) router.ServicePolicy {
			sp := pol.service(name)
			// Retries and requeues resend the request: its body is kept
			// (up to retryBufferSize.requestBytes) as it streams.
			// A gRPC failure that comes in trailers is held for its status
			// (up to retryBufferSize.responseBytes and
			// classificationTimeoutMs) so that it can be retried.
			params := hr.Service.For(name)
			replay := replayBody(params.RetryBufferSize.RequestBytes)
			switch {
			case sp.Retries == nil:
				sp.Retries = replay
			case strings.HasPrefix(params.ResponseClassifier.Kind, "io.l5d.h2.grpc."):
				hold := holdForTrailers(params.RetryBufferSize.ResponseBytes, time.Duration(params.ClassificationTimeoutMs)*time.Millisecond)
				sp.Retries = middleware.Chain(replay, sp.Retries, hold)
			default:
				sp.Retries = middleware.Chain(replay, sp.Retries)
			}
			return sp
		},
		Client: conns.countConns(scope, pol.client),
		NewTransport: func(addr string) router.Transport {
			o := topts
			o.WrapConn = conns.wrapConn(addr)
			var t router.Transport = h2.NewTransport(o)
			if pol.xfccRules != nil {
				// forwardClientCert per bound name, for each attempt.
				t = &xfccTransport{next: t, rules: pol.xfccRules}
			}
			return traceTransport(tr, t)
		},
	})
	p.routers = append(p.routers, rt)
	classify := serverClassify(hr)
	xfcc, _ := forwardsClientCert(&hr.Client, hr.Client.Global.ForwardClientCert)
	for i := range hr.Servers {
		s := &hr.Servers[i]
		idle, life := serverSession(s.ServerSession, 10*time.Minute)
		so := h2.ServerOptions{
			IdleTimeout:              idle,
			LifeTime:                 life,
			MaxConcurrentStreams:     uint32(s.MaxConcurrentStreamsPerConnection),
			InitialStreamWindowBytes: s.InitialStreamWindowBytes,
			MaxFrameBytes:            s.MaxFrameBytes,
			HeaderTableBytes:         s.HeaderTableBytes,
			MaxHeaderListBytes:       s.MaxHeaderListBytes,
			Logger:                   log,
		}
		if so.TLS, err = newServerTLS(ctx, s.TLS, alpnH2Server, log); err != nil {
			return nil, admin.RouterInfo{}, fmt.Errorf("servers[%d].tls: %w", i, err)
		}
		ln, err := net.Listen("tcp", s.Addr())
		if err != nil {
			return nil, admin.RouterInfo{}, fmt.Errorf("servers[%d]: %w", i, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		sscope := telemetry.ServerScope(scope, s.IP, port)
		ln = &countingListener{Listener: ln, m: newConnMetrics(sscope)}
		// l5d-err must fit in what the server accepts as a header list.
		maxHeadersKB := 0
		if s.MaxHeaderListBytes > 0 {
			maxHeadersKB = max(1, min(8, s.MaxHeaderListBytes>>10))
		}
		h := h2.NewHandler(h2.HandlerParams{
			Router:                rt,
			Identifier:            ids,
			ClearContext:          s.ClearContext,
			MaxConcurrentRequests: s.MaxConcurrentRequests,
			MaxCallDepth:          s.MaxCallDepth,
			MaxHeadersKB:          maxHeadersKB,
			Classify:              classify,
			Scope:                 sscope,
			Logger:                log,
			Tracing:               true,
			Edge:                  serverEdge(label, s.AddForwardedHeader, "", xfcc),
		})
		srv := h2.NewServer(traceServer(tr, s.ClearContext, hr.Dtab.Dtab, h), so)
		p.servers = append(p.servers, &listener{name: label + " " + ln.Addr().String(), ln: srv.WrapListener(ln), srv: srv.HTTP})
	}
	return rt, admin.RouterInfo{Label: label, Dtab: hr.Dtab.Dtab, Interpreter: interp}, nil
}

// ---- replayable request bodies (retryBufferSize.requestBytes) ----

// errReplayOverflow is what an attempt reads when it needs request bytes
// that outgrew the retry buffer.
var errReplayOverflow = errors.New("request body exceeded retryBufferSize.requestBytes and cannot be sent again")

// replayBody makes an h2 request's body replayable without delaying it:
// the first attempt streams it from the caller as it arrives (a gRPC
// stream is never read to its end before forwarding), keeping the first
// limit bytes; a later attempt (a retry or a requeue) replays the kept
// bytes, then continues from the caller. Once more than limit bytes have
// been read, retries are refused (replayAwareClassifier) and a requeue
// reads errReplayOverflow.
func replayBody(limit int) middleware.Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return middleware.RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
				return next.RoundTrip(req)
			}
			b := &replayBuffer{src: req.Body, limit: limit}
			r2 := *req
			r2.Body = &replayReader{b: b}
			r2.GetBody = func() (io.ReadCloser, error) {
				if b.overflow.Load() {
					return nil, errReplayOverflow
				}
				return &replayReader{b: b}, nil
			}
			return next.RoundTrip(&r2)
		})
	}
}

// replayBuffer is a request body shared by the attempts of one request.
type replayBuffer struct {
	mu       sync.Mutex
	src      io.ReadCloser
	limit    int
	buf      []byte // the first bytes read from src, up to limit
	n        int64  // bytes read from src
	overflow atomic.Bool
	err      error // src's final error (io.EOF at the end)
}

// replayReader is one attempt's view of a replayBuffer. Closing it does
// not close the caller's body (another attempt may need it; the server
// closes it when the call ends), and never waits for a Read in progress.
type replayReader struct {
	b      *replayBuffer
	off    int64
	closed atomic.Bool
}

func (r *replayReader) Read(p []byte) (int, error) {
	if r.closed.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.off < int64(len(b.buf)) {
		n := copy(p, b.buf[r.off:])
		r.off += int64(n)
		return n, nil
	}
	if r.off < b.n {
		return 0, errReplayOverflow
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	if n > 0 {
		if !b.overflow.Load() && len(b.buf)+n <= b.limit {
			b.buf = append(b.buf, p[:n]...)
		} else {
			b.overflow.Store(true)
		}
		b.n += int64(n)
		r.off = b.n
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (r *replayReader) Close() error {
	r.closed.Store(true)
	return nil
}

// replayAwareClassifier refuses to retry a request whose body can no
// longer be replayed.
type replayAwareClassifier struct{ middleware.Classifier }

func (c replayAwareClassifier) Classify(req *http.Request, resp *http.Response, err error) middleware.Class {
	cl := c.Classifier.Classify(req, resp, err)
	if r, ok := req.Body.(*replayReader); ok && r.b.overflow.Load() {
		cl.Retryable = false
	}
	return cl
}

// ---- classification at trailers (retryBufferSize.responseBytes) ----

// holdForTrailers lets a gRPC classifier see the status of a response
// that arrives in trailers (the endpoint sent its headers first) before
// the retry filter decides: the response body is read ahead, up to limit
// bytes, for at most timeout (classificationTimeoutMs); when the stream
// ends within both, its trailers are in when the response is returned.
// Otherwise the response is passed on as it is, classified by its
// headers, and the bytes read ahead are forwarded first: the body stays
// streamed (a reader gets each chunk as soon as it was read ahead).
func holdForTrailers(limit int, timeout time.Duration) middleware.Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return middleware.RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			if err != nil || limit <= 0 || timeout <= 0 || resp.Body == nil || resp.Body == http.NoBody || !h2.IsGRPC(resp.Header) {
				return resp, err
			}
			if _, ok := h2.GRPCStatus(resp); ok {
				return resp, nil // trailers-only: the status is known
			}
			// The transport fills resp.Trailer while its body is read, here
			// by the read-ahead goroutine: callers get a copy of the
			// response whose trailers are copied over once that is done.
			out := *resp
			out.Trailer = resp.Trailer.Clone()
			b := &readAhead{src: resp.Body, orig: resp, dst: &out, limit: limit, done: make(chan struct{})}
			b.cond.L = &b.mu
			out.Body = b
			go b.run()
			t := time.NewTimer(timeout)
			defer t.Stop()
			select {
			case <-b.done:
				b.mu.Lock()
				if b.err == io.EOF {
					b.copyTrailers()
				}
				b.mu.Unlock()
			case <-t.C:
			case <-req.Context().Done():
			}
			return &out, nil
		})
	}
}

// readAhead is a response body read ahead by run.
type readAhead struct {
	src   io.ReadCloser
	orig  *http.Response // the transport's response (trailers filled at EOF)
	dst   *http.Response // what callers see
	limit int
	done  chan struct{} // closed when run stops

	mu       sync.Mutex
	cond     sync.Cond
	buf      []byte
	off      int
	finished bool  // run stopped
	err      error // src's error when run stopped on one (io.EOF at the end)
	copied   bool  // trailers copied to dst
}

// run reads src until limit bytes, the end of the stream, or an error.
func (b *readAhead) run() {
	defer close(b.done)
	chunk := make([]byte, min(b.limit, 16<<10))
	total := 0
	for total < b.limit {
		n, err := b.src.Read(chunk[:min(len(chunk), b.limit-total)])
		total += n
		b.mu.Lock()
		b.buf = append(b.buf, chunk[:n]...)
		if err != nil {
			b.err = err
		}
		b.cond.Broadcast()
		b.mu.Unlock()
		if err != nil {
			break
		}
	}
	b.mu.Lock()
	b.finished = true
	b.cond.Broadcast()
	b.mu.Unlock()
}

// copyTrailers copies the transport's trailers to dst (once, with b.mu
// held, after src reached EOF on this or the read-ahead goroutine).
func (b *readAhead) copyTrailers() {
	if b.copied {
		return
	}
	b.copied = true
	for k, vv := range b.orig.Trailer {
		if b.dst.Trailer == nil {
			b.dst.Trailer = make(http.Header, len(b.orig.Trailer))
		}
		b.dst.Trailer[k] = vv
	}
}

func (b *readAhead) Read(p []byte) (int, error) {
	b.mu.Lock()
	for b.off == len(b.buf) && !b.finished {
		b.cond.Wait()
	}
	if b.off < len(b.buf) {
		n := copy(p, b.buf[b.off:])
		b.off += n
		b.mu.Unlock()
		return n, nil
	}
	if err := b.err; err != nil {
		if err == io.EOF {
			b.copyTrailers()
		}
		b.mu.Unlock()
		return 0, err
	}
	b.mu.Unlock()
	// Read ahead up to the limit: the rest comes straight from src.
	n, err := b.src.Read(p)
	if err == io.EOF {
		b.mu.Lock()
		b.copyTrailers()
		b.mu.Unlock()
	}
	return n, err
}

func (b *readAhead) Close() error {
	// Closing src also ends a read-ahead blocked on it.
	return b.src.Close()
}
