package tracing

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/reporter"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// fullHop runs the full stack's Server and Client middleware for a
// request with the given trace headers and returns the outbound
// l5d-ctx-trace and l5d-reqid.
func fullHop(t *testing.T, tr *Tracer, ctxTrace, sample string) (string, string) {
	t.Helper()
	var out http.Header
	client := tr.Client(roundTripper(func(r *http.Request) (*http.Response, error) {
		out = r.Header.Clone()
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	}))
	h := tr.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://e/", nil)
		client.RoundTrip(req)
	}))
	req := httptest.NewRequest("GET", "/", nil)
	if ctxTrace != "" {
		req.Header.Set(keyCtxTrace, ctxTrace)
	}
	if sample != "" {
		req.Header.Set(keySample, sample)
	}
	h.ServeHTTP(httptest.NewRecorder(), req)
	return out.Get(keyCtxTrace), out.Get(keyReqID)
}

// ExpressHop gives the next hop what Server and Client give it: the same
// trace (a new one when none came in), a new span whose parent is this
// hop's server span, the same sampling flags, and the trace id as
// l5d-reqid; it declines when the hop would record a span. So it does
// for a propagate-only tracer and for telemeters at rate 0 whose decision
// propagates (io.l5d.zipkin), stays local (io.l5d.tracelog), or both.
func TestExpressHopMatchesFullStack(t *testing.T) {
	tracer := func(fs ...Factory) *Tracer {
		tr, err := Broadcast(fs).NewTracer(telemetry.TracerOptions{Router: "r"})
		if err != nil {
			t.Fatal(err)
		}
		return tr.(*Tracer)
	}
	zipkin0 := Factory{Reporter: reporter.NewNoopReporter()}
	tracelog0 := Factory{Reporter: reporter.NewNoopReporter(), LocalOnly: true}
	for _, tt := range []struct {
		name string
		tr   *Tracer
		root string // the decision passed on for a new trace
	}{
		{"propagate only", tracer(), "unknown"},
		{"zipkin 0", tracer(zipkin0), "no"},
		{"tracelog 0", tracer(tracelog0), "unknown"},
		{"zipkin 0 + tracelog 0", tracer(zipkin0, tracelog0), "unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) { expressMatchesFull(t, tt.tr, tt.root) })
	}
}

func expressMatchesFull(t *testing.T, tr *Tracer, root string) {
	incoming := func(sampled *bool) string {
		var buf [ctxTraceMaxLen]byte
		parent := model.ID(7)
		n := encodeCtxTrace(buf[:], model.SpanContext{TraceID: model.TraceID{Low: 0xabc}, ID: 9, ParentID: &parent, Sampled: sampled})
		return string(buf[:n])
	}
	no := false
	for _, tc := range []struct{ name, ctxTrace, sample string }{
		{"no trace", "", ""},
		{"unknown sampling", incoming(nil), ""},
		{"not sampled", incoming(&no), ""},
		{"l5d-sample 0", "", "0"},
		{"unparsable trace", "bogus", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, n, ok := tr.ExpressHop(tc.ctxTrace, tc.sample)
			if !ok {
				t.Fatal("declined an unsampled hop")
			}
			gotTrace, gotID := vals[:n], vals[n:]
			wantTrace, wantID := fullHop(t, tr, tc.ctxTrace, tc.sample)
			g, gparent, err := decodeCtxTrace(gotTrace)
			if err != nil {
				t.Fatalf("express l5d-ctx-trace %q: %v", gotTrace, err)
			}
			w, wparent, err := decodeCtxTrace(wantTrace)
			if err != nil {
				t.Fatalf("full l5d-ctx-trace %q: %v", wantTrace, err)
			}
			if len(gotTrace) != len(wantTrace) || len(gotID) != len(wantID) {
				t.Errorf("lengths: express %q %q, full %q %q", gotTrace, gotID, wantTrace, wantID)
			}
			if tc.ctxTrace != "" && tc.ctxTrace != "bogus" {
				if g.TraceID != w.TraceID || g.TraceID.Low != 0xabc {
					t.Errorf("trace id: express %v, full %v, want 0xabc", g.TraceID, w.TraceID)
				}
				if gparent != 9 || wparent != 9 {
					// Server keeps the caller's span as its own, so the
					// client span's parent is span 9 on both paths.
					t.Errorf("parent: express %v, full %v, want 9", gparent, wparent)
				}
			}
			if (g.Sampled == nil) != (w.Sampled == nil) || g.Sampled != nil && *g.Sampled != *w.Sampled {
				t.Errorf("sampled: express %v, full %v", g.Sampled, w.Sampled)
			}
			if tc.ctxTrace == "" && tc.sample == "" {
				if got := decision(g.Sampled); got != root {
					t.Errorf("a new trace is passed on as %s, want %s", got, root)
				}
			}
			if g.ID == 0 || g.ID == model.ID(9) {
				t.Errorf("express span id %v is not new", g.ID)
			}
			if gotID != g.TraceID.String()[len(g.TraceID.String())-16:] {
				t.Errorf("l5d-reqid %q is not the trace id %v", gotID, g.TraceID)
			}
		})
	}
	yes := true
	if tr.decides {
		return // the checks below are of the propagate-only tracer
	}
	rec, _ := New(Options{Router: "r", Reporter: reporter.NewNoopReporter(), SampleRate: 1})
	if _, _, ok := rec.ExpressHop("", ""); ok {
		t.Error("a hop sampled by a recording tracer took the lane")
	}
	if _, _, ok := tr.ExpressHop(incoming(&yes), ""); ok {
		t.Error("a hop sampled upstream took the lane")
	}
	b3, _ := New(Options{Router: "r", Propagator: "io.l5d.zipkin"})
	if _, _, ok := b3.ExpressHop("", ""); ok {
		t.Error("a B3 tracer took the lane")
	}
}

// decision names a sampled flag: "yes", "no" or "unknown".
func decision(sampled *bool) string {
	switch {
	case sampled == nil:
		return "unknown"
	case *sampled:
		return "yes"
	}
	return "no"
}
