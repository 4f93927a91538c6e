package telemetry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/accesslog"
	"github.com/linnet-mesh/linnet/internal/admin/dashboard"
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/tracing"
)

// lockedBuffer is an io.Writer safe for the access log's concurrent use
// and the test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestObservabilityStack wires every piece the way the router host does
// (see README.md) around a one-route proxy and checks each output.
func TestObservabilityStack(t *testing.T) {
	var spans struct {
		sync.Mutex
		n int
	}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&batch)
		spans.Lock()
		spans.n += len(batch)
		spans.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer collector.Close()

	// The `telemetry:` list, built.
	var cfg struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	text := "telemetry:\n- kind: io.l5d.prometheus\n- kind: io.l5d.recentRequests\n  sampleRate: 1.0\n  capacity: 5\n" +
		"- kind: io.l5d.zipkin\n  url: " + collector.URL + "/api/v2/spans\n  sampleRate: 1.0\n  batchIntervalMs: 20\n"
	if err := config.Load([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	reg := telemetry.NewRegistry()
	var tms telemetry.Telemeters
	for _, k := range cfg.Telemetry {
		tm, err := k.Value.NewTelemeter(telemetry.TelemeterEnv{Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		tms = append(tms, tm)
	}
	tf := tms.TracerFactory()
	if tf == nil {
		tf = tracing.PropagateOnly()
	}
	tracer, err := tf.NewTracer(telemetry.TracerOptions{Router: "outgoing", Propagator: tracing.PropagatorDefault})
	if err != nil {
		t.Fatal(err)
	}
	recorder := tms.Recorder()

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(tracing.HeaderReqID) == "" {
			t.Error("no l5d-reqid at the backend")
		}
		_, _ = io.WriteString(w, "hi")
	}))
	defer backend.Close()
	bu, _ := url.Parse(backend.URL)

	// The router: server stats → tracer server span → proxy → client
	// stats → tracer client span → transport.
	rt := telemetry.RouterScope(reg.Scope(), "outgoing")
	srvStats := telemetry.NewRequestStats(telemetry.ServerScope(rt, "127.0.0.1", 4140))
	cliStats := telemetry.NewRequestStats(telemetry.ClientScope(rt, "/$/inet/127.1/"+bu.Port()))
	proxy := httputil.NewSingleHostReverseProxy(bu)
	proxy.Transport = tracer.Client(roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		t0 := cliStats.Start()
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			cliStats.End(t0, 0, telemetry.FailureConnect)
			return nil, err
		}
		cliStats.End(t0, resp.StatusCode, "")
		return resp, nil
	}))
	var access lockedBuffer
	router := accesslog.Middleware(&access)(tracer.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := srvStats.Start()
		telemetry.SpanFromContext(r.Context()).Tag(telemetry.TagNamerPath, "/svc/hello")
		proxy.ServeHTTP(w, r)
		srvStats.End(t0, http.StatusOK, "")
		recorder.Record(telemetry.RequestRecord{Router: "outgoing", Logical: "/svc/hello", Concrete: "/$/inet/127.1/" + bu.Port(), Destination: bu.Host, Source: r.RemoteAddr, Method: r.Method, URI: r.RequestURI, Status: 200})
	})))
	srv := httptest.NewServer(router)
	defer srv.Close()

	// The admin server.
	adminMux := http.NewServeMux()
	dashboard.Mount(adminMux)
	adminMux.Handle("/admin/metrics.json", telemetry.MetricsJSONHandler(reg))
	for _, h := range tms.AdminHandlers() {
		adminMux.Handle(h.Path, h.Handler)
	}
	admin := httptest.NewServer(adminMux)
	defer admin.Close()

	for range 20 {
		resp, err := http.Get(srv.URL + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	reg.Roll()
	get := func(p string) string {
		resp, err := http.Get(admin.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, b)
		}
		return string(b)
	}
	var flat map[string]float64
	if err := json.Unmarshal([]byte(get("/admin/metrics.json")), &flat); err != nil {
		t.Fatal(err)
	}
	if flat["rt/outgoing/server/127.0.0.1/4140/requests"] != 20 || flat["rt/outgoing/client/$/inet/127.1/"+bu.Port()+"/success"] != 20 ||
		flat["rt/outgoing/server/127.0.0.1/4140/request_latency_ms.count"] != 20 {
		t.Errorf("metrics.json: %v", flat)
	}
	if p := get("/admin/metrics/prometheus"); !strings.Contains(p, `rt:server:requests{rt="outgoing",server="127.0.0.1/4140"} 20`) {
		t.Errorf("prometheus output lacks the server's requests:\n%.2000s", p)
	}
	if page := get("/requests"); strings.Count(page, "/svc/hello") != 5 {
		t.Errorf("/requests should list the last 5 requests:\n%s", page)
	}
	if !strings.Contains(get("/"), "dashboard.js") {
		t.Error("no dashboard at /")
	}
	if lines := strings.Count(access.String(), `"GET /hello HTTP/1.1" 200 2 "-" "Go-http-client/1.1"`); lines != 20 {
		t.Errorf("%d access log lines, want 20:\n%s", lines, access.String())
	}
	if err := tms.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans.Lock()
		n := spans.n
		spans.Unlock()
		if n == 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector got %d spans, want 40 (a server and a client span per request)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
