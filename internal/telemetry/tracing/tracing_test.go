package tracing

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openzipkin/zipkin-go/model"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

func TestCtxTraceRoundTrip(t *testing.T) {
	yes, no := true, false
	parent := model.ID(9)
	for _, sc := range []model.SpanContext{
		{TraceID: model.TraceID{Low: 1}, ID: 2, ParentID: &parent, Sampled: &yes},
		{TraceID: model.TraceID{Low: 1, High: 3}, ID: 2, Sampled: &no},
		{TraceID: model.TraceID{Low: 0xdeadbeef}, ID: 2, Debug: true},
		{TraceID: model.TraceID{Low: 5}, ID: 6},
	} {
		enc := EncodeCtxTrace(sc)
		got, err := DecodeCtxTrace(enc)
		if err != nil {
			t.Fatalf("%+v: %v", sc, err)
		}
		if got.TraceID != sc.TraceID || got.ID != sc.ID || got.Debug != sc.Debug ||
			(got.ParentID == nil) != (sc.ParentID == nil) || (got.Sampled == nil) != (sc.Sampled == nil) ||
			(got.Sampled != nil && *got.Sampled != *sc.Sampled) {
			t.Errorf("round trip of %+v gave %+v", sc, got)
		}
	}
}

func TestCtxTraceWireFormat(t *testing.T) {
	// span 1, parent 2, trace 3, flags sampled|known (6): Finagle's layout.
	const v = "AAAAAAAAAAEAAAAAAAAAAgAAAAAAAAADAAAAAAAAAAY="
	sc, err := DecodeCtxTrace(v)
	if err != nil || sc.ID != 1 || *sc.ParentID != 2 || sc.TraceID.Low != 3 || !*sc.Sampled {
		t.Fatalf("%+v %v", sc, err)
	}
	if EncodeCtxTrace(sc) != v {
		t.Fatalf("re-encoded %s", EncodeCtxTrace(sc))
	}
	for _, bad := range []string{"", "!!", "AAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="} {
		if _, err := DecodeCtxTrace(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPropagateOnlyPassesDecisionOn(t *testing.T) {
	tr, err := PropagateOnly().NewTracer(telemetry.TracerOptions{Router: "r"})
	if err != nil {
		t.Fatal(err)
	}
	var seen http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	defer backend.Close()
	client := &http.Client{Transport: tr.Client(http.DefaultTransport)}
	srv := httptest.NewServer(tr.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), "GET", backend.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	})))
	defer srv.Close()

	// No inbound context: a new trace, decision left unknown.
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc, err := DecodeCtxTrace(seen.Get(HeaderCtxTrace))
	if err != nil || sc.Sampled != nil || sc.ParentID == nil {
		t.Fatalf("new trace: %+v %v", sc, err)
	}
	if seen.Get(HeaderReqID) != sc.TraceID.String() {
		t.Fatalf("l5d-reqid %q, trace %s", seen.Get(HeaderReqID), sc.TraceID)
	}
	// Garbage is ignored (a new trace), and not forwarded.
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set(HeaderCtxTrace, "garbage")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := DecodeCtxTrace(seen.Get(HeaderCtxTrace)); err != nil {
		t.Fatalf("after garbage: %v", err)
	}
	// An upstream sampled decision survives.
	yes := true
	req, _ = http.NewRequest("GET", srv.URL, nil)
	req.Header.Set(HeaderCtxTrace, EncodeCtxTrace(model.SpanContext{TraceID: model.TraceID{Low: 42}, ID: 7, Sampled: &yes}))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc, _ = DecodeCtxTrace(seen.Get(HeaderCtxTrace))
	if sc.TraceID.Low != 42 || sc.Sampled == nil || !*sc.Sampled || sc.ParentID == nil || *sc.ParentID != 7 {
		t.Fatalf("upstream decision: %+v", sc)
	}
}

func TestUnknownPropagator(t *testing.T) {
	if _, err := New(Options{Propagator: "io.l5d.bogus"}); err == nil {
		t.Fatal("accepted")
	}
	if _, err := New(Options{SampleRate: 1.5}); err == nil {
		t.Fatal("accepted sampleRate 1.5")
	}
}

// BenchmarkServerClient measures one hop's tracing work (server span,
// client span, header propagation) without network I/O.
func BenchmarkServerClient(b *testing.B) {
	tr, _ := PropagateOnly().NewTracer(telemetry.TracerOptions{Router: "r"})
	ok := &http.Response{StatusCode: 200, Body: http.NoBody}
	client := tr.Client(roundTripper(func(*http.Request) (*http.Response, error) { return ok, nil }))
	h := tr.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://127.0.0.1:1/x", nil)
		_, _ = client.RoundTrip(req)
	}))
	req := httptest.NewRequest("GET", "/x", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for range b.N {
		h.ServeHTTP(w, req)
	}
}

func TestUntrustedStartsNewTrace(t *testing.T) {
	tr, _ := PropagateOnly().NewTracer(telemetry.TracerOptions{Router: "edge", Propagator: PropagatorZipkin})
	var seen http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	defer backend.Close()
	client := &http.Client{Transport: tr.Client(http.DefaultTransport)}
	srv := httptest.NewServer(Untrusted(tr.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-B3-Traceid") != "" || r.Header.Get(HeaderSample) != "" {
			t.Error("trace headers reached the handler")
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", backend.URL, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}))))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("X-B3-Traceid", "00000000000000aa")
	req.Header.Set("X-B3-Spanid", "00000000000000bb")
	req.Header.Set("X-B3-Sampled", "1")
	req.Header.Set(HeaderSample, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := seen.Get("X-B3-Traceid"); got == "" || got == "00000000000000aa" {
		t.Fatalf("downstream trace id %q: want a new trace", got)
	}
	if seen.Get("X-B3-Sampled") != "" {
		t.Fatalf("client-supplied sampling decision leaked: %v", seen)
	}
}

// unsampledHop is one hop through a propagate-only tracer's server and
// client middlewares, with nothing else on the request path: the handler
// sends the inbound request itself on (its header map is the outbound
// one). A new trace starts on every call.
func unsampledHop(tb testing.TB) func() {
	tr, err := PropagateOnly().NewTracer(telemetry.TracerOptions{Router: "r"})
	if err != nil {
		tb.Fatal(err)
	}
	ok := &http.Response{StatusCode: 200, Body: http.NoBody}
	client := tr.Client(roundTripper(func(*http.Request) (*http.Response, error) { return ok, nil }))
	h := tr.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = client.RoundTrip(r)
	}))
	req := httptest.NewRequest("GET", "/x", nil)
	w := httptest.NewRecorder()
	return func() { h.ServeHTTP(w, req) }
}

// BenchmarkUnsampledHop measures the tracing work alone of one unsampled
// hop (server and client middleware, header propagation).
func BenchmarkUnsampledHop(b *testing.B) {
	hop := unsampledHop(b)
	b.ReportAllocs()
	for range b.N {
		hop()
	}
}

// TestUnsampledHopAllocs: an unsampled hop costs the request's new
// context (one object that is also the context value), its shallow copy
// (Request.WithContext) and the outbound trace headers (one string for
// both values, one array for both slices); no span object. It was 21
// allocations with a zipkin no-op span per middleware.
func TestUnsampledHopAllocs(t *testing.T) {
	hop := unsampledHop(t)
	if n := testing.AllocsPerRun(200, hop); n > 4 {
		t.Fatalf("%v allocations per unsampled hop, want at most 4", n)
	}
}
