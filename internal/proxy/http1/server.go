package http1

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/linnet-mesh/linnet/internal/clock"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// HandlerParams configures the handler of one router server.
type HandlerParams struct {
	Router     *router.Router
	Identifier proxy.Identifier
	// ClearContext strips every l5d-* header from requests and responses
	// (servers[].clearContext).
	ClearContext bool
	// MaxConcurrentRequests rejects requests above this many in flight
	// (0: unlimited).
	MaxConcurrentRequests int
	// MaxCallDepth bounds the Via entries (default 1000).
	MaxCallDepth int
	// MaxHeadersKB bounds l5d-err (default 8).
	MaxHeadersKB int
	// MaxErrResponseKB bounds the body of an error response (0: no bound;
	// Linkerd's default is 5120).
	MaxErrResponseKB int
	// Scope is the server's metrics scope, rt/<label>/server/<ip>/<port>.
	Scope telemetry.Scope
	// Recorder, when set, sees every routed request (io.l5d.recentRequests).
	Recorder telemetry.RequestRecorder
	// Label and Addr name the router and this server in records.
	Label, Addr string
	// AccessLog, when set, gets one line per request (httpAccessLog).
	AccessLog *AccessLog
	// Tracing says a telemetry.Tracer wraps this handler and the
	// router's endpoint transports: the tracer then owns l5d-ctx-trace,
	// l5d-sample and l5d-reqid, and the handler does not write them.
	Tracing bool
	// Edge, when set, adds the server's optional headers (Forwarded,
	// timestampHeader, x-forwarded-client-cert) to forwarded requests.
	Edge   *proxy.ServerEdge
	Logger *slog.Logger
	// Express, when set, lets plain requests take the express lane
	// (lane.go) where this configuration allows it.
	Express *ExpressParams
}

// Handler is the http.Handler of one router server.
type Handler struct {
	p        HandlerParams
	stats    *telemetry.RequestStats
	inflight atomic.Int64
	express  *express // nil: every request takes the full stack
}

// NewHandler returns the server handler.
func NewHandler(p HandlerParams) *Handler {
	if p.MaxCallDepth <= 0 {
		p.MaxCallDepth = 1000
	}
	if p.MaxHeadersKB <= 0 {
		p.MaxHeadersKB = 8
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{p: p, stats: telemetry.NewRequestStats(p.Scope)}
	h.express = newExpress(h)
	return h
}

// ServeHTTP identifies, routes and forwards one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if max := h.p.MaxConcurrentRequests; max > 0 {
		n := h.inflight.Add(1)
		defer h.inflight.Add(-1)
		if n > int64(max) {
			h.fail(w, r, &proxy.OverloadError{Max: max})
			return
		}
	}
	var diag *diagTrace
	if r.Method == http.MethodTrace {
		var done bool
		if diag, done = h.startTrace(w, r); done {
			return
		}
	}
	t0 := h.stats.Start()
	resp, out, name, err := h.forward(w, r)
	if err != nil {
		status := proxy.MapError(r, err).Status
		h.stats.End(t0, status, router.FailureKind(err))
		traceOutcome(r, name, out, router.FailureKind(err))
		h.record(t0, r, out, name, status)
		n := h.fail(w, r, err)
		h.accessLog(r, status, n, t0)
		return
	}
	if diag != nil {
		h.annotate(diag, resp, out, name)
	}
	status, kind := router.Outcome(r, resp, nil, router.DefaultClassifier)
	h.stats.End(t0, status, kind)
	traceOutcome(r, name, out, kind)
	h.record(t0, r, out, name, status)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		h.accessLog(r, status, 0, t0)
		h.upgrade(w, r, resp)
		return
	}
	n := h.respond(w, r, resp)
	h.accessLog(r, status, n, t0)
}

func (h *Handler) accessLog(r *http.Request, status int, n int64, t0 int64) {
	if h.p.AccessLog != nil {
		h.p.AccessLog.Log(r, status, n, wallStart(t0))
	}
}

// wallStart is the wall-clock time of t0, a clock.Mono reading taken
// moments ago: only access logs and request records need it, so the
// request path does not read the wall clock for every request.
func wallStart(t0 int64) time.Time { return time.Now().Add(-clock.Since(t0)) }

// record reports one request to the recorder, if any.
func (h *Handler) record(t0 int64, r *http.Request, out *http.Request, name dtab.Path, status int) {
	if h.p.Recorder == nil {
		return
	}
	rec := telemetry.RequestRecord{
		Time: wallStart(t0), Source: r.RemoteAddr, Server: h.p.Addr, Router: h.p.Label,
		Method: r.Method, URI: r.URL.RequestURI(), Status: status, Duration: clock.Since(t0),
	}
	if name != nil {
		rec.Logical = name.String()
	}
	if out != nil {
		rec.Concrete = out.Header.Get(proxy.HeaderDstClient)
		rec.Destination = out.URL.Host
	}
	h.p.Recorder.Record(rec)
}

// forward prepares the outbound request and sends it through the router.
// It returns the outbound request and the name, when it got that far.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request) (*http.Response, *http.Request, dtab.Path, error) {
	ctx, err := proxy.ReadContext(r.Header, h.p.ClearContext)
	if err != nil {
		return nil, nil, nil, err
	}
	if proxy.ViaDepth(r.Header) > h.p.MaxCallDepth {
		return nil, nil, nil, &proxy.CallDepthError{Max: h.p.MaxCallDepth}
	}
	name, err := h.p.Identifier.Identify(r)
	if err != nil {
		return nil, nil, nil, err
	}
	// A shallow copy (the header map is ours to change) and its URL, in
	// one allocation.
	o := &outbound{req: *r, url: url.URL{Scheme: "http", Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}}
	out := &o.req
	out.RequestURI = ""
	out.URL = &o.url
	out.Close = false
	if r.ContentLength == 0 {
		// A nil body lets the transport retry on a stale pooled connection.
		out.Body = nil
	}
	hdr := out.Header
	proxy.PrepareOutbound(hdr)
	if _, ok := hdr["User-Agent"]; !ok {
		// An empty value keeps the transport from adding its own.
		hdr["User-Agent"] = emptyValue
	}
	proxy.AppendVia(hdr, r.ProtoMajor, r.ProtoMinor)
	if e := h.p.Edge; e != nil {
		c := connInfo(w, r)
		e.Apply(hdr, r, c, time.Now())
		if e.ClientCertByName {
			out = out.WithContext(e.ClientCertContext(out.Context(), c))
		}
	}
	if h.p.Tracing {
		ctx.WriteOutboundContext(hdr)
	} else {
		ctx.WriteOutbound(hdr)
	}
	resp, err := h.p.Router.RoundTrip(out, router.Dst{Path: name, Local: ctx.Dtab})
	return resp, out, name, err
}

var emptyValue = []string{""}

// outbound is a forwarded request with its URL.
type outbound struct {
	req http.Request
	url url.URL
}

// fail writes the error response of err and returns its body size.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) int64 {
	e := proxy.MapError(r, err)
	if e.Status >= 500 {
		h.p.Logger.Debug("request failed", "request", proxy.RequestSummary(r), "status", e.Status, "err", err)
	}
	if n := h.p.MaxErrResponseKB << 10; n > 0 && len(e.Message) > n {
		for n > 0 && !utf8.RuneStart(e.Message[n]) {
			n--
		}
		e.Message = e.Message[:n]
	}
	proxy.WriteError(w, e, h.p.ClearContext, h.p.MaxHeadersKB<<10)
	if h.p.ClearContext {
		return 0
	}
	return int64(len(e.Message))
}

// respond copies the endpoint's response to the caller and returns the
// number of body bytes sent.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, resp *http.Response) int64 {
	defer resp.Body.Close()
	proxy.RemoveHopByHop(resp.Header)
	proxy.AppendVia(resp.Header, resp.ProtoMajor, resp.ProtoMinor)
	if h.p.ClearContext {
		proxy.StripL5d(resp.Header)
	}
	var dst http.Header
	if a, ok := w.(interface{ adoptHeader(http.Header) bool }); ok && a.adoptHeader(resp.Header) {
		dst = resp.Header // the fast server writes the endpoint's map as it is
	} else {
		dst = w.Header()
		for k, vs := range resp.Header {
			dst[k] = vs
		}
	}
	// Announce the trailers the endpoint announced, so that they can be
	// sent after a chunked body.
	if n := len(resp.Trailer); n > 0 {
		keys := make([]string, 0, n)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst["Trailer"] = keys
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return 0
	}
	n, err := copyBody(w, resp)
	if err != nil {
		// The status line is gone: all we can do is break the connection
		// so the caller sees a truncated response, not a short one.
		if !errors.Is(err, errClientGone) {
			h.p.Logger.Debug("response body copy failed", "request", proxy.RequestSummary(r), "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	if len(resp.Trailer) > 0 {
		for k, vs := range resp.Trailer {
			dst[k] = vs
		}
	}
	return n
}

var errClientGone = errors.New("client went away")

// bufPool holds copy buffers; 32 KiB like io.Copy.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody streams resp.Body to w. Bodies of unknown length (chunked,
// streams, server-sent events) are flushed after every read so that the
// caller sees data as soon as the endpoint sends it.
func copyBody(w http.ResponseWriter, resp *http.Response) (int64, error) {
	flush := resp.ContentLength == -1 || isEventStream(resp.Header)
	var fl http.Flusher
	if flush {
		fl, _ = w.(http.Flusher)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, errClientGone
			}
			total += int64(n)
			if fl != nil {
				fl.Flush()
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && ct[0][:17] == "text/event-stream"
}
