package tracelog_test

import (
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// backend is a loopback HTTP server answering "hello" and keeping the
// headers of every request it receives.
type backend struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, r.Header.Clone())
		b.mu.Unlock()
		io.WriteString(w, "hello")
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

func (b *backend) headers() []http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]http.Header(nil), b.seen...)
}

// decision is the sampling decision a request received from the router:
// "yes", "no" or "unknown" (no sampled flag in l5d-ctx-trace; no
// x-b3-sampled header with B3). It fails the test when the request
// carries no trace context.
func decision(t *testing.T, h http.Header, b3 bool) string {
	t.Helper()
	if b3 {
		if h.Get("X-B3-Traceid") == "" || h.Get("X-B3-Spanid") == "" {
			t.Fatalf("request without B3 trace and span ids: %v", h)
		}
		switch h.Get("X-B3-Sampled") {
		case "":
			return "unknown"
		case "1":
			return "yes"
		case "0":
			return "no"
		}
		t.Fatalf("x-b3-sampled %q", h.Get("X-B3-Sampled"))
	}
	v := h.Get("L5d-Ctx-Trace")
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(raw) != 32 {
		t.Fatalf("l5d-ctx-trace %q: %v, %d bytes; want 32", v, err, len(raw))
	}
	// Flag bits: 2 = sampling decision known, 4 = sampled.
	switch flags := binary.BigEndian.Uint64(raw[24:]); flags &^ 1 {
	case 0:
		return "unknown"
	case 2:
		return "no"
	case 6:
		return "yes"
	default:
		t.Fatalf("l5d-ctx-trace %q: flags %d", v, flags)
	}
	return ""
}

// collectedNow is how many spans the collector has received so far.
func (c *zipkinCollector) collectedNow() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.spans)
}

// io.l5d.tracelog records at its own rate but, as in Linkerd, never
// decides for the next hop: the request reaching the backend is "sampled"
// only when io.l5d.zipkin (or an upstream decision) sampled it, "not
// sampled" when io.l5d.zipkin alone declined it, and carries no decision
// at all ("unknown", the backend decides) when only io.l5d.tracelog kept
// it or io.l5d.zipkin declined it next to io.l5d.tracelog (Linkerd's
// BroadcastTracer: Some(false) from zipkin and None from tracelog give
// None).
func TestTracelogDoesNotDecideForNextHop(t *testing.T) {
	const requests = 3
	const b3 = "  tracePropagator: {kind: io.l5d.zipkin}\n"
	const tracelog1, tracelog0 = "- {kind: io.l5d.tracelog, sampleRate: 1.0}\n", "- {kind: io.l5d.tracelog, sampleRate: 0.0}\n"
	none := func(int) http.Header { return nil }
	for _, tc := range []struct {
		name      string
		zipkin    string // the io.l5d.zipkin rate; "": none configured
		tracelog  string
		extra     string
		in        func(i int) http.Header
		want      string
		logged    int // spans per request
		collected int
	}{
		{"zipkin 0.0, tracelog 1.0", "0.0", tracelog1, "", none, "unknown", 2, 0},
		{"zipkin 0.0, tracelog 1.0, B3", "0.0", tracelog1, b3, none, "unknown", 2, 0},
		{"tracelog 1.0 alone", "", tracelog1, "", none, "unknown", 2, 0},
		{"tracelog 1.0 alone, B3", "", tracelog1, b3, none, "unknown", 2, 0},
		{"zipkin 1.0, tracelog 0.0", "1.0", tracelog0, "", none, "yes", 0, 2},
		{"zipkin 1.0, tracelog 0.0, B3", "1.0", tracelog0, b3, none, "yes", 0, 2},
		{"zipkin 0.0 alone", "0.0", "", "", none, "no", 0, 0},
		{"sampled upstream, zipkin 0.0, tracelog 0.0", "0.0", tracelog0, "", func(i int) http.Header { return sampledCtxTrace(0xfeed0 + uint64(i)) }, "yes", 2, 2},
		{"l5d-sample 1, zipkin 0.0, tracelog 0.0", "0.0", tracelog0, "", func(int) http.Header { return http.Header{"L5d-Sample": {"1"}} }, "yes", 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend(t)
			zc := newZipkinCollector(t)
			telemetry := tc.tracelog
			if tc.zipkin != "" {
				telemetry = zc.telemetry(tc.zipkin) + telemetry
			}
			p, logs := startRouterTo(t, telemetry, tc.extra, be.addr())
			for i := range requests {
				send(t, p, tc.in(i))
			}
			seen := be.headers()
			if len(seen) != requests {
				t.Fatalf("the backend received %d requests, want %d", len(seen), requests)
			}
			for _, h := range seen {
				if got := decision(t, h, tc.extra == b3); got != tc.want {
					t.Errorf("the backend received sampling decision %s, want %s", got, tc.want)
				}
			}
			if tc.logged > 0 {
				waitSpans(t, logs, requests*tc.logged)
			}
			if tc.collected > 0 {
				zc.wait(t, requests*tc.collected)
			} else {
				time.Sleep(100 * time.Millisecond) // five batch intervals
			}
			if logged, collected := len(logs.spans(t)), zc.collectedNow(); logged != requests*tc.logged || collected != requests*tc.collected {
				t.Errorf("%d spans logged, %d at the collector; want %d and %d", logged, collected, requests*tc.logged, requests*tc.collected)
			}
		})
	}
}

// Router A sends to router B, which sends to the backend; both have
// io.l5d.zipkin at 0.0 (each its own collector) and io.l5d.tracelog at
// 1.0. A's tracelog logs every request and tells B nothing ("unknown"),
// so B decides again: its tracelog logs the same traces, its zipkin
// records nothing, and the backend receives no decision either. (Were
// A's "not sampled" passed on, B's tracelog would follow it and log
// nothing.)
func TestTracelogChainedRouters(t *testing.T) {
	const requests = 3
	be := newBackend(t)
	zcA, zcB := newZipkinCollector(t), newZipkinCollector(t)
	const tracelog1 = "- {kind: io.l5d.tracelog, sampleRate: 1.0}\n"
	b, logsB := startRouterTo(t, zcB.telemetry("0.0")+tracelog1, "", be.addr())
	a, logsA := startRouterTo(t, zcA.telemetry("0.0")+tracelog1, "", b.ServerAddrs()[0])
	for range requests {
		send(t, a, nil)
	}
	spansA, spansB := waitSpans(t, logsA, 2*requests), waitSpans(t, logsB, 2*requests)
	time.Sleep(100 * time.Millisecond) // five batch intervals
	if len(spansA) != 2*requests || len(spansB) != 2*requests {
		t.Fatalf("%d spans logged by A, %d by B; want %d each", len(spansA), len(spansB), 2*requests)
	}
	if na, nb := zcA.collectedNow(), zcB.collectedNow(); na != 0 || nb != 0 {
		t.Errorf("%d spans at A's collector, %d at B's; want none", na, nb)
	}
	traces := func(lines []map[string]any) map[string]int {
		m := map[string]int{}
		for _, l := range lines {
			id, _ := l["traceId"].(string)
			m[id]++
		}
		return m
	}
	ta, tb := traces(spansA), traces(spansB)
	if len(ta) != requests {
		t.Errorf("A logged %d traces, want %d", len(ta), requests)
	}
	for id, n := range ta {
		if n != 2 || tb[id] != 2 {
			t.Errorf("trace %s: %d spans logged by A, %d by B; want 2 and 2", id, n, tb[id])
		}
	}
	for _, h := range be.headers() {
		if got := decision(t, h, false); got != "unknown" {
			t.Errorf("the backend received sampling decision %s, want unknown", got)
		}
	}
	if n := len(be.headers()); n != requests {
		t.Errorf("the backend received %d requests, want %d", n, requests)
	}
}
