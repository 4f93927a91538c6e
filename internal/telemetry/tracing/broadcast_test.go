package tracing

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/reporter/recorder"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// broadcastHop builds a Tracer recording to one recorder per rate and
// returns it, the recorders and a function sending one request with the
// given inbound headers through its Server and Client middleware; the
// function returns the outbound headers.
func broadcastHop(t *testing.T, rates ...float64) (*Tracer, []*recorder.ReporterRecorder, func(in http.Header) http.Header) {
	t.Helper()
	var sinks []sink
	for _, r := range rates {
		sinks = append(sinks, zk(r))
	}
	return hopOf(t, "", sinks...)
}

// sink is one telemeter of a test hop: its sampleRate, and whether its
// decision stays local (Factory.LocalOnly).
type sink struct {
	rate  float64
	local bool
}

// zk is a telemeter whose decision propagates, as io.l5d.zipkin's; tl one
// whose decision stays local, as io.l5d.tracelog's.
func zk(rate float64) sink { return sink{rate: rate} }
func tl(rate float64) sink { return sink{rate: rate, local: true} }

// hopOf is broadcastHop with the given propagator and telemeters.
func hopOf(t *testing.T, propagator string, sinks ...sink) (*Tracer, []*recorder.ReporterRecorder, func(in http.Header) http.Header) {
	t.Helper()
	var b Broadcast
	var recs []*recorder.ReporterRecorder
	for _, s := range sinks {
		rec := recorder.NewReporter()
		recs = append(recs, rec)
		b = append(b, Factory{Reporter: rec, SampleRate: s.rate, LocalOnly: s.local})
	}
	tt, err := b.NewTracer(telemetry.TracerOptions{Router: "r", Propagator: propagator})
	if err != nil {
		t.Fatal(err)
	}
	tr := tt.(*Tracer)
	var out http.Header
	client := tr.Client(roundTripper(func(r *http.Request) (*http.Response, error) {
		out = r.Header.Clone()
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	}))
	h := tr.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://e/", nil)
		if _, err := client.RoundTrip(req); err != nil {
			t.Error(err)
		}
	}))
	return tr, recs, func(in http.Header) http.Header {
		req := httptest.NewRequest("GET", "/", nil)
		for k, v := range in {
			req.Header[k] = v
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		return out
	}
}

// spanKey identifies a recorded span.
type spanKey struct {
	trace model.TraceID
	id    model.ID
	kind  model.Kind
}

func keys(spans []model.SpanModel) []spanKey {
	var ks []spanKey
	for _, s := range spans {
		ks = append(ks, spanKey{s.TraceID, s.ID, s.Kind})
	}
	slices.SortFunc(ks, func(a, b spanKey) int {
		if c := strings.Compare(a.trace.String(), b.trace.String()); c != 0 {
			return c
		}
		return strings.Compare(a.id.String()+string(a.kind), b.id.String()+string(b.kind))
	})
	return ks
}

// outSampled is the sampling flag of an outbound l5d-ctx-trace: "yes",
// "no" or "unknown".
func outSampled(t *testing.T, h http.Header) string {
	t.Helper()
	sc, err := DecodeCtxTrace(h.Get(HeaderCtxTrace))
	switch {
	case err != nil:
		t.Fatalf("outbound l5d-ctx-trace %q: %v", h.Get(HeaderCtxTrace), err)
	case sc.Sampled == nil:
		return "unknown"
	case *sc.Sampled:
		return "yes"
	}
	return "no"
}

// Two telemeters that sample everything receive every span, each once,
// with the same trace and span ids and the same tags.
func TestBroadcastRecordsToEveryTelemeter(t *testing.T) {
	_, recs, send := broadcastHop(t, 1, 1)
	const requests = 20
	for range requests {
		if got := outSampled(t, send(nil)); got != "yes" {
			t.Fatalf("outbound sampling flag %s, want yes", got)
		}
	}
	a, b := recs[0].Flush(), recs[1].Flush()
	if len(a) != 2*requests || len(b) != 2*requests {
		t.Fatalf("%d and %d spans, want %d each (a server and a client span per request)", len(a), len(b), 2*requests)
	}
	if !slices.Equal(keys(a), keys(b)) {
		t.Fatalf("the telemeters received different spans:\n%v\n%v", keys(a), keys(b))
	}
	for _, s := range a {
		if s.Tags[telemetry.TagHTTPStatus] != "200" {
			t.Errorf("span %v tags %v, want http.status 200", s.ID, s.Tags)
		}
	}
}

// Each telemeter keeps the traces its own rate samples, in whatever order
// the telemeters are listed; the next hop is told "sampled" exactly when
// some telemeter kept the trace.
func TestBroadcastEachTelemeterItsOwnRate(t *testing.T) {
	for _, rates := range [][]float64{{1, 0}, {0, 1}} {
		_, recs, send := broadcastHop(t, rates...)
		for range 10 {
			if got := outSampled(t, send(nil)); got != "yes" {
				t.Fatalf("rates %v: outbound sampling flag %s, want yes", rates, got)
			}
		}
		for i, rec := range recs {
			want := 20 * int(rates[i])
			if n := len(rec.Flush()); n != want {
				t.Errorf("rates %v: telemeter %d (rate %v) got %d spans, want %d", rates, i, rates[i], n, want)
			}
		}
	}

	// Rates 0.1 and 0.5 (listed low first): about 10% and 50% of the
	// traces, every trace of the lower rate also in the higher one's, and
	// "sampled" passed on for exactly the traces the 0.5 one kept.
	_, recs, send := broadcastHop(t, 0.1, 0.5)
	const requests = 1000
	sampledOut := map[string]bool{}
	for range requests {
		out := send(nil)
		sampledOut[out.Get(HeaderReqID)] = outSampled(t, out) == "yes"
	}
	traces := func(rec *recorder.ReporterRecorder) map[string]bool {
		m := map[string]bool{}
		for _, s := range rec.Flush() {
			m[ReqID(model.SpanContext{TraceID: s.TraceID})] = true
		}
		return m
	}
	low, high := traces(recs[0]), traces(recs[1])
	if len(low) < 50 || len(low) > 150 || len(high) < 400 || len(high) > 600 {
		t.Errorf("%d and %d of %d traces kept at rates 0.1 and 0.5", len(low), len(high), requests)
	}
	for id := range low {
		if !high[id] {
			t.Errorf("trace %s kept at rate 0.1 but not at 0.5", id)
		}
	}
	for id, s := range sampledOut {
		if s != high[id] {
			t.Errorf("trace %s: passed on as sampled %v, kept by the 0.5 telemeter %v", id, s, high[id])
		}
	}
}

// An upstream decision is followed by every telemeter: sampled (by the
// flag, l5d-sample or debug) reaches all of them whatever their rates,
// not sampled reaches none.
func TestBroadcastFollowsUpstreamDecision(t *testing.T) {
	yes, no := true, false
	ctxTrace := func(sampled *bool, debug bool) http.Header {
		sc := model.SpanContext{TraceID: model.TraceID{Low: 0xabc}, ID: 9, Sampled: sampled, Debug: debug}
		return http.Header{"L5d-Ctx-Trace": {EncodeCtxTrace(sc)}}
	}
	for _, tc := range []struct {
		name  string
		rates []float64
		in    http.Header
		spans int
		out   string
	}{
		{"sampled flag", []float64{0, 0}, ctxTrace(&yes, false), 2, "yes"},
		{"debug flag", []float64{0, 0}, ctxTrace(nil, true), 2, "unknown"},
		{"l5d-sample 1", []float64{0, 0}, http.Header{"L5d-Sample": {"1"}}, 2, "yes"},
		{"not sampled flag", []float64{1, 1}, ctxTrace(&no, false), 0, "no"},
		{"l5d-sample 0", []float64{1, 1}, http.Header{"L5d-Sample": {"0"}}, 0, "no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, recs, send := broadcastHop(t, tc.rates...)
			if got := outSampled(t, send(tc.in)); got != tc.out {
				t.Errorf("outbound sampling flag %s, want %s", got, tc.out)
			}
			a, b := recs[0].Flush(), recs[1].Flush()
			if len(a) != tc.spans || len(b) != tc.spans {
				t.Fatalf("%d and %d spans, want %d each", len(a), len(b), tc.spans)
			}
			if !slices.Equal(keys(a), keys(b)) {
				t.Errorf("the telemeters received different spans:\n%v\n%v", keys(a), keys(b))
			}
			for _, s := range a {
				if strings.HasPrefix(tc.name, "sampled") && s.TraceID.Low != 0xabc {
					t.Errorf("span in trace %v, want the upstream trace abc", s.TraceID)
				}
			}
		})
	}
}

// A trace joined with its sampling unknown is decided from its trace id:
// two hops (or two processes) with the same rates make the same choice.
func TestBroadcastUnknownSamplingDecidedByTraceID(t *testing.T) {
	_, recs1, send1 := broadcastHop(t, 0.5, 0.2)
	_, recs2, send2 := broadcastHop(t, 0.2, 0.5)
	for i := range uint64(200) {
		sc := model.SpanContext{TraceID: model.TraceID{Low: i*0x9e3779b97f4a7c15 + 1}, ID: 9}
		in := http.Header{"L5d-Ctx-Trace": {EncodeCtxTrace(sc)}}
		if a, b := outSampled(t, send1(in)), outSampled(t, send2(in)); a != b {
			t.Fatalf("trace %v: sampled %s by one hop, %s by the other", sc.TraceID, a, b)
		}
	}
	// recs1 is [0.5, 0.2], recs2 [0.2, 0.5]: compare like with like.
	if a, b := keyTraces(recs1[0].Flush()), keyTraces(recs2[1].Flush()); !slices.Equal(a, b) || len(a) == 0 {
		t.Errorf("rate 0.5 telemeters kept different traces: %d and %d", len(a), len(b))
	}
	if a, b := keyTraces(recs1[1].Flush()), keyTraces(recs2[0].Flush()); !slices.Equal(a, b) || len(a) == 0 {
		t.Errorf("rate 0.2 telemeters kept different traces: %d and %d", len(a), len(b))
	}
}

func keyTraces(spans []model.SpanModel) []uint64 {
	var ids []uint64
	for _, s := range spans {
		if s.Kind == model.Server {
			ids = append(ids, s.TraceID.Low)
		}
	}
	slices.Sort(ids)
	return ids
}

// The express lane traces an unsampled hop of a broadcasting tracer as
// the full stack does, with no allocation more than a single telemeter's,
// and declines a hop any telemeter records.
func TestBroadcastExpressHop(t *testing.T) {
	single, _ := New(Options{Router: "r", Reporter: recorder.NewReporter(), SampleRate: 0})
	both, _, _ := broadcastHop(t, 0, 0)
	if _, _, ok := both.ExpressHop("", ""); !ok {
		t.Fatal("an unsampled hop of two telemeters declined the lane")
	}
	vals, n, _ := both.ExpressHop("", "")
	sc, err := DecodeCtxTrace(vals[:n])
	if err != nil || sc.Sampled == nil || *sc.Sampled {
		t.Errorf("express l5d-ctx-trace %q (%v): want a decided, unsampled trace", vals[:n], err)
	}
	allocs := func(tr *Tracer) float64 {
		return testing.AllocsPerRun(200, func() { tr.ExpressHop("", "") })
	}
	s, b := allocs(single), allocs(both)
	if b > s {
		t.Errorf("express hop: %v allocations with two telemeters, %v with one", b, s)
	}
	t.Logf("express hop: %v allocations with one telemeter, %v with two", s, b)
	oneOf, _, _ := broadcastHop(t, 0, 1)
	if _, _, ok := oneOf.ExpressHop("", ""); ok {
		t.Error("a hop that one of two telemeters records took the lane")
	}
}

// The full stack's unsampled hop costs a broadcasting tracer what it costs
// one telemeter (TestUnsampledHopAllocs).
func TestBroadcastUnsampledHopAllocs(t *testing.T) {
	tr, err := Broadcast{{Reporter: recorder.NewReporter()}, {Reporter: recorder.NewReporter()}}.NewTracer(telemetry.TracerOptions{Router: "r"})
	if err != nil {
		t.Fatal(err)
	}
	ok := &http.Response{StatusCode: 200, Body: http.NoBody}
	client := tr.Client(roundTripper(func(*http.Request) (*http.Response, error) { return ok, nil }))
	h := tr.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = client.RoundTrip(r)
	}))
	req := httptest.NewRequest("GET", "/x", nil)
	w := httptest.NewRecorder()
	n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) })
	if n > 4 {
		t.Fatalf("%v allocations per unsampled hop, want at most 4", n)
	}
	t.Logf("%v allocations per unsampled hop with two telemeters", n)
}

// Every telemeter's rate is checked, not only the first's.
func TestBroadcastRateErrors(t *testing.T) {
	for _, rate := range []float64{-0.5, 1.5, math.NaN()} {
		b := Broadcast{{Reporter: recorder.NewReporter(), SampleRate: 1}, {Reporter: recorder.NewReporter(), SampleRate: rate}}
		_, err := b.NewTracer(telemetry.TracerOptions{Router: "r"})
		if err == nil || !strings.Contains(err.Error(), "sampleRate must be between 0 and 1, got "+strconv.FormatFloat(rate, 'g', -1, 64)) {
			t.Errorf("rate %v: error %v", rate, err)
		}
	}
}

// fakeTelemeter is a tracing telemeter as zipkin and tracelog are: it
// embeds a Factory.
type fakeTelemeter struct {
	Factory
}

func (fakeTelemeter) AdminHandlers() []telemetry.AdminHandler { return nil }
func (fakeTelemeter) Close() error                            { return nil }

// foreignTelemeter is a tracing telemeter that is not built on Factory.
type foreignTelemeter struct{}

func (foreignTelemeter) NewTracer(telemetry.TracerOptions) (telemetry.Tracer, error) {
	return nil, io.EOF
}
func (foreignTelemeter) AdminHandlers() []telemetry.AdminHandler { return nil }
func (foreignTelemeter) Close() error                            { return nil }

// A process's telemeters give one factory recording to every tracing
// telemeter; one that cannot be combined makes building a tracer fail
// with its name rather than being left out.
func TestTelemetersTracerFactoryBroadcasts(t *testing.T) {
	a, b := recorder.NewReporter(), recorder.NewReporter()
	tms := telemetry.Telemeters{
		fakeTelemeter{Factory{Reporter: a, SampleRate: 1}},
		fakeTelemeter{Factory{Reporter: b, SampleRate: 1}},
	}
	tr, err := tms.TracerFactory().NewTracer(telemetry.TracerOptions{Router: "r"})
	if err != nil {
		t.Fatal(err)
	}
	h := tr.Server(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if na, nb := len(a.Flush()), len(b.Flush()); na != 1 || nb != 1 {
		t.Errorf("%d and %d server spans, want 1 in each telemeter", na, nb)
	}

	tms = append(tms, foreignTelemeter{})
	_, err = tms.TracerFactory().NewTracer(telemetry.TracerOptions{Router: "r"})
	if err == nil || !strings.Contains(err.Error(), "tracing.foreignTelemeter cannot record spans together") {
		t.Errorf("error %v, want one naming the telemeter that cannot be combined", err)
	}
}
