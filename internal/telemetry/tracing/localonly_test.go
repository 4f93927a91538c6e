package tracing

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/reporter/recorder"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// outDecision is the sampling decision an outbound request carries, for
// either propagator: "yes", "no" or "unknown" (no sampled flag / no
// x-b3-sampled header). It fails the test when the request carries no
// trace context at all.
func outDecision(t *testing.T, propagator string, h http.Header) string {
	t.Helper()
	if propagator != PropagatorZipkin {
		return outSampled(t, h)
	}
	if h.Get("X-B3-Traceid") == "" || h.Get("X-B3-Spanid") == "" {
		t.Fatalf("outbound B3 headers without trace or span id: %v", h)
	}
	switch v := h.Get("X-B3-Sampled"); v {
	case "":
		return "unknown"
	case "1":
		return "yes"
	case "0":
		return "no"
	default:
		t.Fatalf("outbound x-b3-sampled %q", v)
	}
	return ""
}

func (s sink) String() string {
	if s.local {
		return fmt.Sprintf("local %v", s.rate)
	}
	return fmt.Sprintf("propagating %v", s.rate)
}

// A telemeter whose decision stays local (io.l5d.tracelog) records at its
// own rate but never makes the next hop sample: the next hop is told
// "sampled" when a propagating telemeter (io.l5d.zipkin) kept the trace,
// "not sampled" when every telemeter propagates and none kept it, and
// "unknown" otherwise (Linkerd's BroadcastTracer over sampleTrace answers
// Some(true), Some(false) and None). Both propagators carry it.
func TestLocalOnlyDecisionIsNotPassedOn(t *testing.T) {
	const requests = 10
	for _, tc := range []struct {
		sinks []sink
		out   string
		spans []int // per telemeter, per request
	}{
		{[]sink{zk(0), tl(1)}, "unknown", []int{0, 2}},
		{[]sink{tl(1), zk(0)}, "unknown", []int{2, 0}},
		{[]sink{zk(0), tl(0)}, "unknown", []int{0, 0}},
		{[]sink{tl(1)}, "unknown", []int{2}},
		{[]sink{tl(0)}, "unknown", []int{0}},
		{[]sink{tl(1), tl(1)}, "unknown", []int{2, 2}},
		{[]sink{zk(1), tl(0)}, "yes", []int{2, 0}},
		{[]sink{tl(0), zk(1)}, "yes", []int{0, 2}},
		{[]sink{zk(1), tl(1)}, "yes", []int{2, 2}},
		{[]sink{zk(1)}, "yes", []int{2}},
		{[]sink{zk(0)}, "no", []int{0}},
		{[]sink{zk(0), zk(0)}, "no", []int{0, 0}},
	} {
		for _, prop := range []string{PropagatorDefault, PropagatorZipkin} {
			t.Run(fmt.Sprint(prop, tc.sinks), func(t *testing.T) {
				_, recs, send := hopOf(t, prop, tc.sinks...)
				for range requests {
					if got := outDecision(t, prop, send(nil)); got != tc.out {
						t.Fatalf("outbound decision %s, want %s", got, tc.out)
					}
				}
				for i, rec := range recs {
					if n := len(rec.Flush()); n != requests*tc.spans[i] {
						t.Errorf("telemeter %d (%v): %d spans, want %d", i, tc.sinks[i], n, requests*tc.spans[i])
					}
				}
			})
		}
	}
}

// With a propagating telemeter at 0.2 and a local one at 0.5, "sampled"
// goes on for exactly the traces the propagating one kept, "unknown" for
// the others, never "not sampled"; the local one keeps its own share,
// which includes every trace the other kept (one draw per trace).
func TestLocalOnlyMixedRates(t *testing.T) {
	_, recs, send := hopOf(t, "", tl(0.5), zk(0.2))
	const requests = 1000
	out := map[string]string{}
	for range requests {
		h := send(nil)
		out[h.Get(HeaderReqID)] = outSampled(t, h)
	}
	traces := func(rec *recorder.ReporterRecorder) map[string]bool {
		m := map[string]bool{}
		for _, s := range rec.Flush() {
			m[ReqID(model.SpanContext{TraceID: s.TraceID})] = true
		}
		return m
	}
	local, prop := traces(recs[0]), traces(recs[1])
	if len(prop) < 120 || len(prop) > 280 || len(local) < 400 || len(local) > 600 {
		t.Errorf("%d and %d of %d traces kept at rates 0.2 and 0.5", len(prop), len(local), requests)
	}
	for id, got := range out {
		want := "unknown"
		if prop[id] {
			want = "yes"
		}
		if got != want {
			t.Errorf("trace %s: passed on as %s, want %s (kept by the propagating telemeter: %v)", id, got, want, prop[id])
		}
	}
	for id := range prop {
		if !local[id] {
			t.Errorf("trace %s kept at rate 0.2 but not at 0.5", id)
		}
	}
}

// An upstream decision is passed on whatever the telemeters, and followed
// by all of them; an inbound trace with its sampling unknown is decided
// here again, with the same rules.
func TestLocalOnlyUpstreamDecision(t *testing.T) {
	yes, no := true, false
	ctxTrace := func(sampled *bool) http.Header {
		sc := model.SpanContext{TraceID: model.TraceID{Low: 0xabc}, ID: 9, Sampled: sampled}
		return http.Header{"L5d-Ctx-Trace": {EncodeCtxTrace(sc)}}
	}
	for _, sinks := range [][]sink{{tl(0)}, {tl(1)}, {zk(0), tl(1)}, {zk(1), tl(0)}} {
		for _, tc := range []struct {
			name string
			in   http.Header
			out  string
			all  int // spans in every telemeter; -1: each at its own rate
		}{
			{"sampled flag", ctxTrace(&yes), "yes", 2},
			{"l5d-sample 1", http.Header{"L5d-Sample": {"1"}}, "yes", 2},
			{"not sampled flag", ctxTrace(&no), "no", 0},
			{"l5d-sample 0", http.Header{"L5d-Sample": {"0"}}, "no", 0},
			{"unknown", ctxTrace(nil), "", -1},
		} {
			t.Run(fmt.Sprint(sinks, tc.name), func(t *testing.T) {
				_, recs, send := hopOf(t, "", sinks...)
				want := tc.out
				if want == "" { // decided here
					want = "unknown"
					if !sinks[0].local && sinks[0].rate == 1 {
						want = "yes"
					}
				}
				if got := outSampled(t, send(tc.in)); got != want {
					t.Errorf("outbound decision %s, want %s", got, want)
				}
				for i, rec := range recs {
					n, wantN := len(rec.Flush()), tc.all
					if wantN < 0 {
						wantN = 2 * int(sinks[i].rate)
					}
					if n != wantN {
						t.Errorf("telemeter %d (%v): %d spans, want %d", i, sinks[i], n, wantN)
					}
				}
			})
		}
	}
}

// Two hops, each with a propagating telemeter at 0 and a local one at 1
// (io.l5d.zipkin 0 + io.l5d.tracelog 1): each hop's local telemeter
// records its spans, in the same trace, and the propagating ones nothing;
// the second hop passes "unknown" on too.
func TestLocalOnlyTwoHops(t *testing.T) {
	_, recsA, sendA := hopOf(t, "", zk(0), tl(1))
	_, recsB, sendB := hopOf(t, "", zk(0), tl(1))
	outA := sendA(nil)
	outB := sendB(outA)
	if a, b := outSampled(t, outA), outSampled(t, outB); a != "unknown" || b != "unknown" {
		t.Errorf("outbound decisions %s and %s, want unknown at both hops", a, b)
	}
	// On the wire: the flags word (bytes 24..32) is zero, neither
	// "sampling known" (2) nor "sampled" (4).
	raw, err := base64.StdEncoding.DecodeString(outA.Get(HeaderCtxTrace))
	if err != nil || len(raw) != 32 || binary.BigEndian.Uint64(raw[24:]) != 0 {
		t.Errorf("A's outbound l5d-ctx-trace %q (%v): want 32 bytes with flags 0", outA.Get(HeaderCtxTrace), err)
	}
	za, la, zb, lb := recsA[0].Flush(), recsA[1].Flush(), recsB[0].Flush(), recsB[1].Flush()
	if len(za) != 0 || len(zb) != 0 || len(la) != 2 || len(lb) != 2 {
		t.Fatalf("spans: A %d propagating, %d local; B %d propagating, %d local; want 0, 2, 0, 2", len(za), len(la), len(zb), len(lb))
	}
	if la[0].TraceID != lb[0].TraceID || outA.Get(HeaderReqID) != outB.Get(HeaderReqID) {
		t.Errorf("the hops recorded different traces: %v and %v", la[0].TraceID, lb[0].TraceID)
	}
	sc, _ := DecodeCtxTrace(outA.Get(HeaderCtxTrace))
	for _, s := range lb {
		if s.Kind == model.Server && s.ID != sc.ID {
			t.Errorf("B's server span %v does not share A's client span %v", s.ID, sc.ID)
		}
	}
}

// A client span with no server span above it (a request the router
// originates) passes its decision on by the same rules.
func TestLocalOnlyClientWithoutServer(t *testing.T) {
	for _, tc := range []struct {
		sinks []sink
		out   string
	}{
		{[]sink{tl(1)}, "unknown"},
		{[]sink{zk(0), tl(1)}, "unknown"},
		{[]sink{zk(1), tl(0)}, "yes"},
		{[]sink{zk(0)}, "no"},
		{nil, "unknown"}, // propagate only
	} {
		t.Run(fmt.Sprint(tc.sinks), func(t *testing.T) {
			var b Broadcast
			for _, s := range tc.sinks {
				b = append(b, Factory{Reporter: recorder.NewReporter(), SampleRate: s.rate, LocalOnly: s.local})
			}
			tr, err := b.NewTracer(telemetry.TracerOptions{Router: "r"})
			if err != nil {
				t.Fatal(err)
			}
			var out http.Header
			client := tr.Client(roundTripper(func(r *http.Request) (*http.Response, error) {
				out = r.Header.Clone()
				return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
			}))
			if _, err := client.RoundTrip(httptest.NewRequest("GET", "http://e/", nil)); err != nil {
				t.Fatal(err)
			}
			if got := outSampled(t, out); got != tc.out {
				t.Errorf("outbound decision %s, want %s", got, tc.out)
			}
		})
	}
}

// The local telemeter's flag costs nothing on the request path: an
// unsampled hop of io.l5d.zipkin + io.l5d.tracelog allocates what one of
// io.l5d.zipkin alone does, on the full stack and on the express lane.
func TestLocalOnlyAllocs(t *testing.T) {
	single, _, _ := hopOf(t, "", zk(0))
	mixed, _, _ := hopOf(t, "", zk(0), tl(0))
	local, _, _ := hopOf(t, "", tl(0))
	ok := &http.Response{StatusCode: 200, Body: http.NoBody}
	full := func(tr *Tracer) float64 {
		client := tr.Client(roundTripper(func(*http.Request) (*http.Response, error) { return ok, nil }))
		h := tr.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = client.RoundTrip(r)
		}))
		req := httptest.NewRequest("GET", "/x", nil)
		w := httptest.NewRecorder()
		return testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) })
	}
	express := func(tr *Tracer) float64 {
		return testing.AllocsPerRun(200, func() {
			if _, _, ok := tr.ExpressHop("", ""); !ok {
				t.Fatal("an unsampled hop declined the express lane")
			}
		})
	}
	fs, es := full(single), express(single)
	for name, tr := range map[string]*Tracer{"zipkin 0 + tracelog 0": mixed, "tracelog 0": local} {
		if f, e := full(tr), express(tr); f > fs || e > es {
			t.Errorf("%s: %v allocations on the full stack, %v on the express lane; zipkin alone: %v, %v", name, f, e, fs, es)
		}
	}
	t.Logf("unsampled hop: %v allocations on the full stack, %v on the express lane", fs, es)
}
