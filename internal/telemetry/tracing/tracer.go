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
//
// A Tracer may report to several tracing telemeters (Broadcast; Linkerd's
// BroadcastTracer): each span is recorded once, so every telemeter sees
// the same trace and span ids, and is reported to each telemeter that
// keeps its trace. One sampling decision is made per trace:
//
//   - an upstream decision (the sampled or debug flag of l5d-ctx-trace or
//     x-b3-*, or l5d-sample) is followed by every telemeter: a trace
//     sampled upstream is reported to all of them, one not sampled to
//     none;
//   - otherwise each telemeter keeps the trace when its own sampleRate
//     samples it, so each backend receives the share it was configured
//     with; the draw is one number per trace (the trace id, for a trace
//     joined with its sampling unknown), compared with every rate, so a
//     telemeter with a higher rate keeps every trace one with a lower rate
//     keeps. The spans are recorded when any telemeter keeps the trace.
//
// What the next hop is told (the sampled flag of l5d-ctx-trace, or
// x-b3-sampled) is, as Linkerd's BroadcastTracer combines its tracers'
// answers to Finagle's sampleTrace:
//
//   - the upstream decision, when there was one;
//   - otherwise "sampled" when a telemeter whose decision propagates
//     (every one but Factory.LocalOnly ones: io.l5d.zipkin, not
//     io.l5d.tracelog) kept the trace;
//   - otherwise "not sampled" when every telemeter propagates (they all
//     declined it);
//   - otherwise "unknown" (no sampled flag): a LocalOnly telemeter is
//     configured and no propagating one kept the trace, so the next hop
//     decides by itself. io.l5d.tracelog alone, at any rate, thus never
//     makes the next hop sample, and neither does io.l5d.tracelog next
//     to io.l5d.zipkin for the traces io.l5d.zipkin declined.
//
// Like Linkerd's broadcast, then, a telemeter with a lower rate than a
// propagating one also reports the traces that the other sampled at an
// earlier hop: the next hop cannot tell whose rate sampled them.
package tracing

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
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
	// Also lists more telemeters' reporters and rates to record to, as
	// Reporter and SampleRate are (package doc). Factories with a nil
	// Reporter are ignored.
	Also []Factory
	// LocalOnly: Reporter's sampling decisions are not passed on to the
	// next hop (Factory.LocalOnly).
	LocalOnly bool
}

// Tracer records server and client spans of one router. It implements
// telemetry.Tracer.
type Tracer struct {
	// zts[k-1] reports to the k telemeters of highest sampleRate; a
	// trace sampled upstream uses the last one, which reports to all.
	// A propagate-only Tracer has one, reporting nowhere.
	zts    []*zipkin.Tracer
	limits []uint64 // the telemeters' sampling limits (rateLimit), descending
	prop   propagator
	router string
	// decides is false when no telemeter records: the Tracer then makes
	// no sampling decision of its own.
	decides bool
	// passLimit is the highest sampling limit of the telemeters whose
	// decision propagates (0: none); allPass is set when every
	// telemeter's does. See passesOn.
	passLimit uint64
	allPass   bool
}

// New builds a Tracer.
func New(opts Options) (*Tracer, error) {
	prop, err := newPropagator(opts.Propagator)
	if err != nil {
		return nil, err
	}
	var sinks []Factory
	for _, f := range append([]Factory{{Reporter: opts.Reporter, SampleRate: opts.SampleRate, LocalOnly: opts.LocalOnly}}, opts.Also...) {
		if !(f.SampleRate >= 0 && f.SampleRate <= 1) {
			return nil, errors.New("tracing: sampleRate must be between 0 and 1, got " + strconv.FormatFloat(f.SampleRate, 'g', -1, 64))
		}
		if f.Reporter != nil {
			sinks = append(sinks, f)
		}
	}
	// Highest rate first: the telemeters keeping a trace are then always
	// a prefix of sinks (pick).
	slices.SortStableFunc(sinks, func(a, b Factory) int { return cmp.Compare(b.SampleRate, a.SampleRate) })
	ep, err := zipkin.NewEndpoint(opts.Router, "")
	if err != nil {
		return nil, err
	}
	t := &Tracer{prop: prop, router: opts.Router, decides: len(sinks) > 0, allPass: true}
	newTracer := func(rep reporter.Reporter, sample zipkin.Sampler) error {
		zt, err := zipkin.NewTracer(rep,
			zipkin.WithLocalEndpoint(ep),
			zipkin.WithSampler(sample),
			zipkin.WithSharedSpans(true),
			zipkin.WithNoopSpan(true), // unsampled spans record nothing: cheap propagation
		)
		t.zts = append(t.zts, zt)
		return err
	}
	if len(sinks) == 0 {
		return t, newTracer(reporter.NewNoopReporter(), zipkin.NeverSample)
	}
	for _, f := range sinks {
		limit := rateLimit(f.SampleRate)
		t.limits = append(t.limits, limit)
		if f.LocalOnly {
			t.allPass = false
		} else {
			t.passLimit = max(t.passLimit, limit)
		}
	}
	for k := 1; k <= len(sinks); k++ {
		rep := sinks[0].Reporter
		if k > 1 {
			rep = broadcastReporter(sinks[:k])
		}
		// The sampler decides only for a client span with no server
		// span above it (see Client): the trace is then reported to
		// every telemeter when any samples it.
		if err := newTracer(rep, t.sampled); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// rateLimit is the sampling limit of a rate: a trace id (or draw) id is
// sampled when id>>1 < limit. Unlike zipkin-go's boundary sampler it
// accepts any rate in [0, 1] (Linkerd's default is 0.001); 0 samples
// nothing and 1 everything.
func rateLimit(rate float64) uint64 {
	return uint64(min(max(rate, 0), 1) * (1 << 63))
}

// pick returns how many telemeters keep the trace of draw id: the first
// pick(id) of them, 0 when none does.
func (t *Tracer) pick(id uint64) int {
	k := 0
	for k < len(t.limits) && id>>1 < t.limits[k] {
		k++
	}
	return k
}

// sampled reports whether any telemeter keeps the trace of draw id.
func (t *Tracer) sampled(id uint64) bool { return t.pick(id) > 0 }

// passesOn reports whether the next hop is told this hop's decision on a
// trace of draw id that it decided itself (package doc): "sampled" when a
// propagating telemeter keeps it (then pick(id) > 0 too, so the decision
// is "sampled"), "not sampled" when every telemeter propagates and none
// keeps it. Otherwise the next hop is told "unknown".
func (t *Tracer) passesOn(id uint64) bool {
	return t.decides && (t.allPass || id>>1 < t.passLimit)
}

// broadcastReporter reports each span to every one of sinks.
type broadcastReporter []Factory

func (b broadcastReporter) Send(s model.SpanModel) {
	for _, f := range b {
		f.Reporter.Send(s)
	}
}

// Close closes nothing: each telemeter closes its own reporter.
func (b broadcastReporter) Close() error { return nil }

// hopContext is the request context below a Tracer's Server middleware.
// It carries the server span's context and whether its sampling decision
// is passed on (made upstream, or passesOn), and is itself the
// context value (one allocation instead of context.WithValue's two): an
// unsampled request, the common case, needs no zipkin span at all.
type hopContext struct {
	context.Context
	sc     model.SpanContext
	parent model.ID       // what sc.ParentID points to
	known  bool           // sc.Sampled is passed on; false: the next hop is told "unknown"
	record bool           // sampled: a zipkin span is in the context too
	zt     *zipkin.Tracer // when record: the tracer of this hop's spans
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
// server span, the context of the server span joining sc. zt is the
// zipkin tracer that records the span, nil when it is not sampled: the
// caller then starts it with zt (sc carries the decision; a root keeps an
// empty trace id for zipkin to fill in). Otherwise sc is the complete span
// context, a new root trace when none came in. pass reports whether sc's
// decision is the one to pass on to the next hop; when it is false, the
// next hop is told "unknown".
func (t *Tracer) serverContext(sc model.SpanContext) (_ model.SpanContext, zt *zipkin.Tracer, pass bool) {
	root := sc.TraceID.Empty() || sc.ID == 0
	low := sc.TraceID.Low
	if root {
		low = newID()
	}
	if sc.Debug || sc.Sampled != nil && *sc.Sampled {
		return sc, t.zts[len(t.zts)-1], true // sampled upstream: every telemeter
	}
	pass = sc.Sampled != nil // not sampled upstream
	if sc.Sampled == nil {
		pass = t.passesOn(low)
		if k := t.pick(low); k > 0 {
			sc.Sampled = &sampledTrue
			return sc, t.zts[k-1], pass
		}
		sc.Sampled = &sampledFalse
	}
	if root {
		sc.TraceID, sc.ID, sc.ParentID = model.TraceID{Low: low}, model.ID(low), nil
	}
	return sc, nil, pass
}

// Server implements telemetry.Tracer.
func (t *Tracer) Server(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := t.prop.extract(r.Header)
		sc := in.sc
		if sc.Sampled == nil && !sc.Debug && in.sample != nil {
			sc.Sampled = sampledPtr(rand.Float64() < *in.sample)
		}
		hc := &hopContext{Context: r.Context(), parent: in.parent}
		if hc.parent != 0 {
			sc.ParentID = &hc.parent
		}
		hc.sc, hc.zt, hc.known = t.serverContext(sc)
		hc.record = hc.zt != nil
		if !hc.record {
			// Most requests are not sampled: propagate only, with no
			// span object and one context.
			next.ServeHTTP(w, r.WithContext(hc))
			return
		}
		span := hc.zt.StartSpan(r.Method, zipkin.Kind(model.Server), zipkin.Parent(hc.sc))
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
		zt := t.zts[len(t.zts)-1]
		if inTrace {
			zt = hop.zt // the telemeters that keep this hop's server span
		}
		var span zipkin.Span
		if parent := zipkin.SpanFromContext(ctx); parent != nil {
			span = zt.StartSpan(r.Method, zipkin.Kind(model.Client), zipkin.Parent(parent.Context()))
		} else {
			span = zt.StartSpan(r.Method, zipkin.Kind(model.Client))
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
		if (inTrace && !known) || (!inTrace && !t.passesOn(sc.TraceID.Low)) {
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
