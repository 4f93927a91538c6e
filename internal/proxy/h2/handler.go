package h2

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// HandlerParams configures the handler of one h2 router server.
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
	// Classify decides what the server stats count as a success (default
	// router.DefaultClassifier; a GRPCClassifier's RouterClassifier for
	// gRPC services).
	Classify router.Classifier
	// Scope is the server's metrics scope, rt/<label>/server/<ip>/<port>.
	Scope  telemetry.Scope
	Logger *slog.Logger
	// Tracing says a telemetry.Tracer wraps this handler and the
	// router's endpoint transports: the tracer then owns l5d-ctx-trace,
	// l5d-sample and l5d-reqid, and the handler does not write them.
	Tracing bool
	// Edge, when set, adds the server's optional headers (Forwarded,
	// x-forwarded-client-cert) to forwarded requests.
	Edge *proxy.ServerEdge
}

// Handler is the http.Handler of one h2 router server. It forwards each
// stream through the router without buffering: request and response
// bodies are streamed both ways as frames arrive (gRPC bidi streams work),
// and trailers are forwarded after the body. Failures the proxy produces
// are answered as Linkerd errors (status + l5d-err), or, to gRPC callers,
// as trailers-only gRPC statuses.
type Handler struct {
	p        HandlerParams
	stats    *telemetry.RequestStats
	inflight atomic.Int64
}

// NewHandler returns the server handler.
func NewHandler(p HandlerParams) *Handler {
	if p.MaxCallDepth <= 0 {
		p.MaxCallDepth = 1000
	}
	if p.MaxHeadersKB <= 0 {
		p.MaxHeadersKB = 8
	}
	if p.Classify == nil {
		p.Classify = router.DefaultClassifier
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{p: p, stats: telemetry.NewRequestStats(p.Scope)}
}

// ServeHTTP identifies, routes and forwards one stream.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	grpc := IsGRPC(r.Header)
	if max := h.p.MaxConcurrentRequests; max > 0 {
		n := h.inflight.Add(1)
		defer h.inflight.Add(-1)
		if n > int64(max) {
			h.fail(w, r, &proxy.OverloadError{Max: max}, grpc)
			return
		}
	}
	ctx := r.Context()
	if grpc {
		// The caller's gRPC deadline also bounds this hop, so that the
		// endpoint's stream is cancelled even if the caller's
		// RST_STREAM never arrives. grpc-timeout itself is forwarded for
		// the endpoint to enforce.
		if d, ok := ParseGRPCTimeout(headerValue(r.Header, hdrGRPCTimeout)); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
	}
	t0 := h.stats.Start()
	resp, err := h.forward(ctx, r)
	if err != nil {
		h.stats.End(t0, proxy.MapError(r, err).Status, router.FailureKind(err))
		h.fail(w, r, err, grpc)
		return
	}
	status, kind := router.Outcome(r, resp, nil, h.p.Classify)
	h.stats.End(t0, status, kind)
	h.respond(w, r, resp)
}

func headerValue(h http.Header, k string) string {
	if vs := h[k]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// forward prepares the outbound request and sends it through the router.
func (h *Handler) forward(ctx context.Context, r *http.Request) (*http.Response, error) {
	lctx, err := proxy.ReadContext(r.Header, h.p.ClearContext)
	if err != nil {
		return nil, err
	}
	if proxy.ViaDepth(r.Header) > h.p.MaxCallDepth {
		return nil, &proxy.CallDepthError{Max: h.p.MaxCallDepth}
	}
	name, err := h.p.Identifier.Identify(r)
	if err != nil {
		return nil, err
	}
	out := r.WithContext(ctx) // shallow copy; the header map is ours to change
	out.RequestURI = ""
	out.URL = &url.URL{Scheme: "http", Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.Close = false
	if r.ContentLength == 0 {
		// END_STREAM came with the headers: send none either.
		out.Body = nil
	}
	hdr := out.Header
	prepareOutbound(hdr)
	if _, ok := hdr["User-Agent"]; !ok {
		// An empty value keeps the transport from adding its own.
		hdr["User-Agent"] = emptyValue
	}
	proxy.AppendVia(hdr, r.ProtoMajor, r.ProtoMinor)
	if e := h.p.Edge; e != nil {
		c := edgeConn(r)
		e.Apply(hdr, r, c, time.Now())
		if e.ClientCertByName {
			// The bound name decides: each attempt resolves the value
			// (proxy.ResolveClientCert).
			out = out.WithContext(e.ClientCertContext(out.Context(), c))
		}
	}
	if h.p.Tracing {
		lctx.WriteOutboundContext(hdr)
	} else {
		lctx.WriteOutbound(hdr)
	}
	return h.p.Router.RoundTrip(out, router.Dst{Path: name, Local: lctx.Dtab})
}

var (
	emptyValue      = []string{""}
	teTrailersValue = []string{"trailers"}
)

// prepareOutbound applies HTTP/2's connection-specific header rules
// (RFC 9113 §8.2.2) to a forwarded request: the hop-by-hop headers go
// (they cannot be sent on HTTP/2 at all), except "te: trailers", which
// the caller asked for end to end and gRPC requires.
func prepareOutbound(h http.Header) {
	te := proxy.HasToken(h["Te"], "trailers")
	proxy.RemoveHopByHop(h)
	delete(h, "Http2-Settings") // from an h2c upgrade request
	if te {
		h["Te"] = teTrailersValue
	}
}

// fail answers a request the proxy could not forward.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, grpc bool) {
	e := proxy.MapError(r, err)
	if e.Status >= 500 {
		h.p.Logger.Debug("request failed", "request", proxy.RequestSummary(r), "status", e.Status, "err", err)
	}
	if grpc {
		WriteGRPCError(w, ErrorCode(err, e), e, h.p.ClearContext, h.p.MaxHeadersKB<<10)
		return
	}
	proxy.WriteError(w, e, h.p.ClearContext, h.p.MaxHeadersKB<<10)
}

// respond copies the endpoint's response to the caller, streaming the
// body and forwarding the trailers once it has ended.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	defer resp.Body.Close()
	proxy.RemoveHopByHop(resp.Header)
	proxy.AppendVia(resp.Header, resp.ProtoMajor, resp.ProtoMinor)
	if h.p.ClearContext {
		proxy.StripL5d(resp.Header)
	}
	dst := w.Header()
	for k, vs := range resp.Header {
		dst[k] = vs
	}
	if _, ok := dst["Content-Type"]; !ok {
		// Present but empty: net/http must not sniff one the endpoint
		// did not send.
		dst["Content-Type"] = nil
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	if err := copyBody(w, resp.Body); err != nil {
		// The headers are gone: reset the stream so that the caller sees
		// a failed stream rather than a short one.
		if !errors.Is(err, errClientGone) {
			h.p.Logger.Debug("response body copy failed", "request", proxy.RequestSummary(r), "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	// Trailers are only known now; TrailerPrefix sends keys that were not
	// announced before the body (gRPC never announces grpc-status).
	for k, vs := range resp.Trailer {
		if len(vs) == 0 || (h.p.ClearContext && proxy.IsL5d(k)) {
			continue
		}
		dst[http.TrailerPrefix+k] = vs
	}
}

var errClientGone = errors.New("client went away")

// bufPool holds copy buffers of 16 KiB, the default HTTP/2 frame size.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// copyBody streams src to w, flushing after every read: on HTTP/2 a
// message is only useful to the peer once its DATA frame is sent, and
// gRPC streams interleave small messages in both directions.
func copyBody(w http.ResponseWriter, src io.Reader) error {
	fl, _ := w.(http.Flusher)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return errClientGone
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
