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

	"github.com/linnet-mesh/linnet/internal/routerd"
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
	text := `
admin: {port: 0}
telemetry:
` + telemetry + `
routers:
- protocol: http
  label: traced
  dtab: /svc/web => /$/inet/` + strings.Replace(be.Listener.Addr().String(), ":", "/", 1) + `;
  servers: [{port: 0}]
`
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

// Two tracing telemeters: the first one records, and the second is named
// in a startup warning instead of being dropped silently.
func TestSecondTracerIsWarnedAbout(t *testing.T) {
	p, logs := startRouter(t, "- {kind: io.l5d.tracelog, sampleRate: 1.0}\n- {kind: io.l5d.tracelog, sampleRate: 1.0, level: DEBUG}\n")
	logs.mu.Lock()
	text := logs.buf.String()
	logs.mu.Unlock()
	want := "telemetry[1] (io.l5d.tracelog) records no spans: only one tracing telemeter is supported, and telemetry[0] (io.l5d.tracelog) is the one in use"
	if !strings.Contains(text, want) {
		t.Fatalf("startup log lacks %q:\n%s", want, text)
	}
	send(t, p, nil)
	for _, s := range waitSpans(t, logs, 2) {
		if s["level"] != "INFO" {
			t.Errorf("span logged by the second telemeter (level %v): %v", s["level"], s)
		}
	}
}
