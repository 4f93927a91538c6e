package tracelog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"

	"github.com/linnet-mesh/linnet/internal/routerd"
	"github.com/linnet-mesh/linnet/internal/telemetry/tracing"
	_ "github.com/linnet-mesh/linnet/internal/telemetry/zipkin" // io.l5d.zipkin
)

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) spans(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "trace span" {
			out = append(out, m)
		}
	}
	return out
}

// startRouter runs a router from config text whose process logger writes
// JSON lines to the returned buffer, with one route to a loopback backend.
func startRouter(t *testing.T, telemetry string) (*routerd.Process, *logBuffer) {
	t.Helper()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	t.Cleanup(be.Close)
	return startRouterTo(t, telemetry, "", be.Listener.Addr().String())
}

// startRouterTo is startRouter routing /svc/web to the given ip:port,
// with extra lines (indented as router keys, e.g. a tracePropagator) in
// the router's config.
func startRouterTo(t *testing.T, telemetry, extra, dst string) (*routerd.Process, *logBuffer) {
	t.Helper()
	text := `
admin: {port: 0}
telemetry:
` + telemetry + `
routers:
- protocol: http
  label: traced
  dtab: /svc/web => /$/inet/` + strings.Replace(dst, ":", "/", 1) + `;
  servers: [{port: 0}]
` + extra
	cfg, err := routerd.LoadConfig([]byte(text))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := routerd.Start(context.Background(), cfg, routerd.Options{Text: []byte(text), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p, logs
}

func send(t *testing.T, p *routerd.Process, header http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+p.ServerAddrs()[0]+"/hi?secret=1", nil)
	req.Host = "web"
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("%d %q; want 200 hello", resp.StatusCode, b)
	}
}

// waitSpans waits until at least n span lines are logged, then a little
// longer to catch extra ones.
func waitSpans(t *testing.T, logs *logBuffer, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(logs.spans(t)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d span lines after 10s; want %d", len(logs.spans(t)), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	return logs.spans(t)
}

// With sampleRate 1.0 each request logs its server span and its client
// span (one attempt), one line each, tied together by trace and parent ids.
func TestRouterLogsEverySpan(t *testing.T) {
	p, logs := startRouter(t, "- kind: io.l5d.tracelog\n  sampleRate: 1.0\n  level: INFO\n")
	const requests = 3
	for range requests {
		send(t, p, nil)
	}
	lines := waitSpans(t, logs, 2*requests)
	if len(lines) != 2*requests {
		t.Fatalf("%d span lines; want %d (a server and a client span per request): %v", len(lines), 2*requests, lines)
	}
	servers := map[string]map[string]any{} // by trace id
	var clients []map[string]any
	for _, l := range lines {
		if l["level"] != "INFO" || l["telemeter"] != "io.l5d.tracelog" {
			t.Errorf("line %v; want level INFO from the io.l5d.tracelog telemeter's logger", l)
		}
		switch l["kind"] {
		case "SERVER":
			servers[l["traceId"].(string)] = l
		case "CLIENT":
			clients = append(clients, l)
		default:
			t.Errorf("span kind %v", l["kind"])
		}
	}
	if len(servers) != requests || len(clients) != requests {
		t.Fatalf("%d traces with a server span, %d client spans; want %d each", len(servers), len(clients), requests)
	}
	for _, c := range clients {
		s := servers[c["traceId"].(string)]
		if s == nil || c["parentId"] != s["spanId"] {
			t.Errorf("client span %v is not a child of its trace's server span %v", c, s)
			continue
		}
		tags, _ := c["tags"].(map[string]any)
		if tags["http.rsp.status"] != "200" || tags["http.uri"] != "/hi?…" || tags["dst.addr"] == nil {
			t.Errorf("client span tags = %v; want status 200, uri without the query, dst.addr", tags)
		}
		if d, _ := c["duration"].(float64); d <= 0 {
			t.Errorf("client span duration %v", c["duration"])
		}
		stags, _ := s["tags"].(map[string]any)
		if stags["router.label"] != "traced" {
			t.Errorf("server span tags = %v; want router.label traced", stags)
		}
	}
	if strings.Contains(logs.buf.String(), "secret=1") {
		t.Error("a query string was logged")
	}
}

// With sampleRate 0.0 no new trace is sampled, so nothing is logged; an
// upstream decision (l5d-sample: 1) is still followed, which shows the
// telemeter is live in this process.
func TestRouterSampleRateZero(t *testing.T) {
	p, logs := startRouter(t, "- {kind: io.l5d.tracelog, sampleRate: 0.0}\n")
	for range 5 {
		send(t, p, nil)
	}
	send(t, p, http.Header{"L5d-Sample": {"1"}})
	lines := waitSpans(t, logs, 2)
	if len(lines) != 2 || lines[0]["traceId"] != lines[1]["traceId"] {
		t.Errorf("span lines = %v; want only the two spans of the request sampled upstream", lines)
	}
}

// zipkinCollector is a Zipkin v2 HTTP collector on loopback: it accepts
// the JSON span batches io.l5d.zipkin posts to /api/v2/spans.
type zipkinCollector struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []model.SpanModel
}

func newZipkinCollector(t *testing.T) *zipkinCollector {
	t.Helper()
	c := &zipkinCollector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/spans" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var batch []model.SpanModel
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.spans = append(c.spans, batch...)
		c.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// telemetry is the io.l5d.zipkin entry posting to c, at rate.
func (c *zipkinCollector) telemetry(rate string) string {
	return "- {kind: io.l5d.zipkin, url: '" + c.srv.URL + "/api/v2/spans', sampleRate: " + rate + ", batchIntervalMs: 20}\n"
}

// wait waits until at least n spans have arrived, then a little longer to
// catch extra ones.
func (c *zipkinCollector) wait(t *testing.T, n int) []model.SpanModel {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.spans)
		c.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spans at the collector after 10s; want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond) // several batch intervals
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]model.SpanModel(nil), c.spans...)
}

// spanID names a span by trace id, span id and kind.
type spanID struct{ trace, span, kind string }

func collectedIDs(spans []model.SpanModel) map[spanID]int {
	ids := map[spanID]int{}
	for _, s := range spans {
		ids[spanID{s.TraceID.String(), s.ID.String(), string(s.Kind)}]++
	}
	return ids
}

func loggedIDs(lines []map[string]any) map[spanID]int {
	ids := map[spanID]int{}
	for _, l := range lines {
		trace, _ := l["traceId"].(string)
		span, _ := l["spanId"].(string)
		kind, _ := l["kind"].(string)
		ids[spanID{trace, span, kind}]++
	}
	return ids
}

// sampledCtxTrace is an l5d-ctx-trace header of a trace sampled upstream.
func sampledCtxTrace(trace uint64) http.Header {
	yes := true
	sc := model.SpanContext{TraceID: model.TraceID{Low: trace}, ID: 0x77, Sampled: &yes}
	return http.Header{"L5d-Ctx-Trace": {tracing.EncodeCtxTrace(sc)}}
}

// io.l5d.zipkin and io.l5d.tracelog in one process both record every
// span (Linkerd's broadcast): each request's server and client span reach
// the Zipkin collector and the log, once each, with the same trace and
// span ids; no startup warning leaves one out.
func TestZipkinAndTracelogRecordTheSameSpans(t *testing.T) {
	zc := newZipkinCollector(t)
	p, logs := startRouter(t, zc.telemetry("1.0")+"- {kind: io.l5d.tracelog, sampleRate: 1.0}\n")
	const requests = 5
	for range requests {
		send(t, p, nil)
	}
	collected := zc.wait(t, 2*requests)
	logged := waitSpans(t, logs, 2*requests)
	if len(collected) != 2*requests || len(logged) != 2*requests {
		t.Fatalf("%d spans at the collector, %d logged; want %d each", len(collected), len(logged), 2*requests)
	}
	z, l := collectedIDs(collected), loggedIDs(logged)
	kinds := map[string]int{}
	for id, n := range z {
		kinds[id.kind]++
		if n != 1 || l[id] != 1 {
			t.Errorf("span %v: %d at the collector, %d logged; want 1 and 1", id, n, l[id])
		}
	}
	if len(l) != len(z) || kinds["SERVER"] != requests || kinds["CLIENT"] != requests {
		t.Errorf("collector spans %v, logged %v; want the same %d server and %d client spans", z, l, requests, requests)
	}
	logs.mu.Lock()
	text := logs.buf.String()
	logs.mu.Unlock()
	if strings.Contains(text, "records no spans") {
		t.Errorf("startup warned that a tracing telemeter records nothing:\n%s", text)
	}
}

// Each telemeter keeps its own sampleRate: with rates 1.0 and 0.0 the
// spans reach one of them only, whichever is listed first; a trace
// sampled upstream (the sampled flag of l5d-ctx-trace, or l5d-sample: 1)
// reaches both.
func TestZipkinAndTracelogEachItsOwnRate(t *testing.T) {
	const requests = 4
	t.Run("zipkin 1.0, tracelog 0.0", func(t *testing.T) {
		zc := newZipkinCollector(t)
		p, logs := startRouter(t, zc.telemetry("1.0")+"- {kind: io.l5d.tracelog, sampleRate: 0.0}\n")
		for range requests {
			send(t, p, nil)
		}
		if got := zc.wait(t, 2*requests); len(got) != 2*requests {
			t.Fatalf("%d spans at the collector; want %d", len(got), 2*requests)
		}
		if got := logs.spans(t); len(got) != 0 {
			t.Fatalf("%d spans logged at rate 0.0: %v", len(got), got)
		}
		send(t, p, sampledCtxTrace(0xfeed))
		logged := waitSpans(t, logs, 2)
		collected := zc.wait(t, 2*requests+2)
		if len(logged) != 2 || len(collected) != 2*requests+2 {
			t.Fatalf("after a request sampled upstream: %d logged, %d at the collector; want 2 and %d", len(logged), len(collected), 2*requests+2)
		}
		z := collectedIDs(collected)
		for id := range loggedIDs(logged) {
			if id.trace != "000000000000feed" || z[id] != 1 {
				t.Errorf("logged span %v: want one in trace feed that the collector has too", id)
			}
		}
	})
	t.Run("zipkin 0.0, tracelog 1.0", func(t *testing.T) {
		zc := newZipkinCollector(t)
		p, logs := startRouter(t, zc.telemetry("0.0")+"- {kind: io.l5d.tracelog, sampleRate: 1.0}\n")
		for range requests {
			send(t, p, nil)
		}
		if got := waitSpans(t, logs, 2*requests); len(got) != 2*requests {
			t.Fatalf("%d spans logged; want %d", len(got), 2*requests)
		}
		time.Sleep(100 * time.Millisecond) // five batch intervals
		zc.mu.Lock()
		n := len(zc.spans)
		zc.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d spans at the collector at rate 0.0", n)
		}
		send(t, p, http.Header{"L5d-Sample": {"1"}})
		collected := zc.wait(t, 2)
		logged := waitSpans(t, logs, 2*requests+2)
		if len(collected) != 2 || len(logged) != 2*requests+2 {
			t.Fatalf("after a request with l5d-sample: 1: %d at the collector, %d logged; want 2 and %d", len(collected), len(logged), 2*requests+2)
		}
		l := loggedIDs(logged)
		for id := range collectedIDs(collected) {
			if l[id] != 1 {
				t.Errorf("collected span %v was not logged", id)
			}
		}
	})
}
