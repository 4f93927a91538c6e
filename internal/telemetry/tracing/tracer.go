// Package tracing records Zipkin spans for the router and propagates trace
// context between hops, built on github.com/openzipkin/zipkin-go.
//
// Each hop records a server span (the request as received; kind SERVER)
// and one client span per attempt sent to an endpoint (kind CLIENT), the
// way Linkerd 1 does. The client span's context travels in l5d-ctx-trace
// (io.l5d.default propagator) or x-b3-* (io.l5d.zipkin); the next hop's
// server span shares the client span's id (Zipkin's shared spans, as
// Finagle does). l5d-reqid (the trace id) is written on every outbound
// request.
//
// A Tracer without a Reporter still propagates context (Linkerd always
// writes l5d-ctx-trace) but exports nothing and makes no sampling
// decision of its own: an upstream decision is passed on unchanged.
package tracing

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"

	zipkin "github.com/openzipkin/zipkin-go"
	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/reporter"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Options configure a Tracer.
type Options struct {
	// Router is the router label: the local service name of the spans.
	Router string
	// Propagator is PropagatorDefault ("" too) or PropagatorZipkin.
	Propagator string
	// Reporter receives finished, sampled spans. Nil: propagate only.
	Reporter reporter.Reporter
	// SampleRate is the probability (0..1) that a new trace is sampled
	// when no upstream decision and no l5d-sample header says otherwise.
	SampleRate float64
}

// Tracer records server and client spans of one router. It implements
// telemetry.Tracer.
type Tracer struct {
	zt      *zipkin.Tracer
	prop    propagator
	router  string
	decides bool // false: never make a sampling decision of our own
	sample  zipkin.Sampler
}

// New builds a Tracer.
func New(opts Options) (*Tracer, error) {
	prop, err := newPropagator(opts.Propagator)
	if err != nil {
		return nil, err
	}
	if opts.SampleRate < 0 || opts.SampleRate > 1 {
		return nil, errors.New("tracing: sampleRate must be between 0 and 1, got " + strconv.FormatFloat(opts.SampleRate, 'g', -1, 64))
	}
	rep, decides := opts.Reporter, true
	if rep == nil {
		rep, decides = reporter.NewNoopReporter(), false
	}
	ep, err := zipkin.NewEndpoint(opts.Router, "")
	if err != nil {
		return nil, err
	}
	sample := rateSampler(opts.SampleRate)
	zt, err := zipkin.NewTracer(rep,
		zipkin.WithLocalEndpoint(ep),
		zipkin.WithSampler(sample),
		zipkin.WithSharedSpans(true),
		zipkin.WithNoopSpan(true), // unsampled spans record nothing: cheap propagation
	)
	if err != nil {
		return nil, err
	}
	return &Tracer{zt: zt, prop: prop, router: opts.Router, decides: decides, sample: sample}, nil
}

// rateSampler samples a fraction of trace ids. Unlike zipkin-go's boundary
// sampler it accepts any rate in [0, 1] (Linkerd's default is 0.001).
func rateSampler(rate float64) zipkin.Sampler {
	switch {
	case rate <= 0:
		return zipkin.NeverSample
	case rate >= 1:
		return zipkin.AlwaysSample
	}
	limit := uint64(rate * (1 << 63))
	return func(id uint64) bool { return id>>1 < limit }
}

// hopContext is the request context below a Tracer's Server middleware.
// It carries the server span's context and whether its sampling decision
// is known (made upstream or by a reporting tracer), and is itself the
// context value (one allocation instead of context.WithValue's two): an
// unsampled request, the common case, needs no zipkin span at all.
type hopContext struct {
	context.Context
	sc     model.SpanContext
	parent model.ID // what sc.ParentID points to
	known  bool
	record bool // sampled: a zipkin span is in the context too
}

type hopKey struct{}

func (c *hopContext) Value(key any) any {
	if _, ok := key.(hopKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// newID returns a random, non-zero span or trace id (math/rand/v2's
// per-thread generator: no lock, no allocation).
func newID() uint64 {
	for {
		if id := rand.Uint64(); id != 0 {
			return id
		}
	}
}

// serverContext decides, as zipkin-go's StartSpan would for a shared
// server span, the context of the server span joining sc. record is true
// when the span is sampled: the caller then starts it with zipkin (sc
// carries the decision; a root keeps an empty trace id for zipkin to
// fill in). Otherwise sc is the complete span context, a new root trace
// when none came in.
func (t *Tracer) serverContext(sc model.SpanContext) (_ model.SpanContext, record bool) {
	root := sc.TraceID.Empty() || sc.ID == 0
	low := sc.TraceID.Low
	if root {
		low = newID()
	}
	if !sc.Debug && sc.Sampled == nil {
		sc.Sampled = sampledPtr(t.sample(low))
	}
	if sc.Debug || *sc.Sampled {
		return sc, true
	}
	if root {
		sc.TraceID, sc.ID, sc.ParentID = model.TraceID{Low: low}, model.ID(low), nil
	}
	return sc, false
}

// Server implements telemetry.Tracer.
func (t *Tracer) Server(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := t.prop.extract(r.Header)
		sc := in.sc
		if sc.Sampled == nil && !sc.Debug && in.sample != nil {
			sc.Sampled = sampledPtr(rand.Float64() < *in.sample)
		}
		hc := &hopContext{Context: r.Context(), parent: in.parent, known: sc.Sampled != nil || sc.Debug || t.decides}
		if hc.parent != 0 {
			sc.ParentID = &hc.parent
		}
		hc.sc, hc.record = t.serverContext(sc)
		if !hc.record {
			// Most requests are not sampled: propagate only, with no
			// span object and one context.
			next.ServeHTTP(w, r.WithContext(hc))
			return
		}
		span := t.zt.StartSpan(r.Method, zipkin.Kind(model.Server), zipkin.Parent(hc.sc))
		ctx := zipkin.NewContext(r.Context(), span)
		hc.Context = telemetry.ContextWithSpan(ctx, span)
		hc.sc = span.Context()
		ctx = hc
		if ep := endpoint(r.RemoteAddr); ep != nil {
			span.SetRemoteEndpoint(ep)
		}
		tagRequest(span, r, r.Host)
		if t.router != "" {
			span.Tag(telemetry.TagRouterLabel, t.router)
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			status := sw.status
			if status == 0 {
				status = http.StatusOK // nothing written: net/http sends 200
			}
			tagStatus(span, status, sw.Header())
			span.Finish()
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// Client implements telemetry.Tracer.
func (t *Tracer) Client(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		ctx := r.Context()
		hop, inTrace := ctx.Value(hopKey{}).(*hopContext)
		if inTrace && !hop.record {
			// An unsampled trace: the client span is only an id in the
			// outbound headers. The router's tiers own the outbound
			// request and write their headers on it; so does this.
			sc := model.SpanContext{TraceID: hop.sc.TraceID, ID: model.ID(newID()), ParentID: &hop.sc.ID, Sampled: hop.sc.Sampled}
			if !hop.known {
				sc.Sampled = nil // pass "unknown" on
			}
			t.prop.inject(r.Header, sc)
			return next.RoundTrip(r)
		}
		known := inTrace && hop.known
		var span zipkin.Span
		if parent := zipkin.SpanFromContext(ctx); parent != nil {
			span = t.zt.StartSpan(r.Method, zipkin.Kind(model.Client), zipkin.Parent(parent.Context()))
		} else {
			span = t.zt.StartSpan(r.Method, zipkin.Kind(model.Client))
		}
		if recording(span) {
			if ep := endpoint(r.URL.Host); ep != nil {
				span.SetRemoteEndpoint(ep)
			}
			tagRequest(span, r, r.Host)
			if r.URL.Host != "" {
				span.Tag(telemetry.TagDstAddr, r.URL.Host)
			}
		}
		ctx = zipkin.NewContext(ctx, span)
		ctx = telemetry.ContextWithSpan(ctx, span)
		// The trace headers are written on the outbound request, rather
		// than copying the header map on every attempt.
		out := r.WithContext(ctx)
		sc := span.Context()
		if (inTrace && !known) || (!inTrace && !t.decides) {
			sc.Sampled = nil // pass "unknown" on rather than our sampler's guess
		}
		t.prop.inject(out.Header, sc)
		resp, err := next.RoundTrip(out)
		if err != nil {
			span.Tag("error", err.Error())
			span.Finish()
			return nil, err
		}
		tagStatus(span, resp.StatusCode, resp.Header)
		if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusSwitchingProtocols || !recording(span) {
			// Nothing to wait for: no body, a no-op span, or an upgraded
			// connection, whose body is the raw stream (an
			// io.ReadWriteCloser, which it must stay) and may live for
			// hours: the span covers the handshake.
			span.Finish()
			return resp, nil
		}
		// The span ends when the response has been read (or abandoned).
		resp.Body = &finishBody{ReadCloser: resp.Body, span: span}
		return resp, nil
	})
}

// recording reports whether span is sampled (an unsampled span is a
// zipkin-go no-op span that records nothing).
func recording(span zipkin.Span) bool {
	sc := span.Context()
	return sc.Debug || (sc.Sampled != nil && *sc.Sampled)
}

// tagRequest records Linkerd's request tags (its TracingFilter's).
func tagRequest(span zipkin.Span, r *http.Request, host string) {
	if span.Context().Sampled != nil && !*span.Context().Sampled && !span.Context().Debug {
		return // a no-op span: skip the work
	}
	span.Tag(telemetry.TagHTTPURI, r.URL.RequestURI())
	span.Tag(telemetry.TagHTTPMethod, r.Method)
	if host != "" {
		span.Tag(telemetry.TagHTTPHost, host)
	}
	span.Tag(telemetry.TagHTTPVersion, r.Proto)
}

// tagStatus records the response tags; a 5XX also gets Zipkin's error tag.
func tagStatus(span zipkin.Span, status int, h http.Header) {
	if span.Context().Sampled != nil && !*span.Context().Sampled && !span.Context().Debug {
		return
	}
	span.Tag(telemetry.TagHTTPStatus, strconv.Itoa(status))
	if ct := h.Get("Content-Type"); ct != "" {
		span.Tag(telemetry.TagHTTPRspCType, ct)
	}
	if status >= 500 {
		span.Tag("error", strconv.Itoa(status))
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// finishBody finishes the client span at EOF or Close, whichever is first.
type finishBody struct {
	io.ReadCloser
	span zipkin.Span
	once sync.Once
}

func (b *finishBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.span.Finish)
	}
	return n, err
}

func (b *finishBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.span.Finish)
	return err
}

// statusWriter remembers the status code; Flush, Hijack and Unwrap keep
// streaming, upgrades and http.ResponseController working.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// endpoint turns an "ip:port" into a Zipkin endpoint, or nil for anything
// else. (zipkin.NewEndpoint would resolve host names: no DNS on the request
// path.)
func endpoint(hostport string) *model.Endpoint {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return nil
	}
	ep := &model.Endpoint{Port: ap.Port()}
	if a := ap.Addr().Unmap(); a.Is4() {
		ep.IPv4 = net.IP(a.AsSlice())
	} else {
		ep.IPv6 = net.IP(a.AsSlice())
	}
	return ep
}

var _ telemetry.Tracer = (*Tracer)(nil)
