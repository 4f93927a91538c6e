package zipkin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/tracing"
)

// collector is a minimal Zipkin v2 HTTP collector on loopback.
type collector struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []model.SpanModel
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
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

func (c *collector) wait(t *testing.T, n int, within time.Duration) []model.SpanModel {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		got := append([]model.SpanModel(nil), c.spans...)
		c.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func load(t *testing.T, text string) *Config {
	t.Helper()
	var d struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	if err := config.Load([]byte(text), &d); err != nil {
		t.Fatal(err)
	}
	return d.Telemetry[0].Value.(*Config)
}

// hop is one router: a server whose handler forwards to next through the
// tracer's client middleware.
func hop(t *testing.T, tr telemetry.Tracer, next string) *httptest.Server {
	u, err := url.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = tr.Client(http.DefaultTransport)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What the router does after binding.
		telemetry.SpanFromContext(r.Context()).Tag(telemetry.TagNamerPath, "/svc/hello")
		rp.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(tr.Server(h))
	t.Cleanup(srv.Close)
	return srv
}

func TestTwoHopTrace(t *testing.T) {
	for _, prop := range []string{tracing.PropagatorDefault, tracing.PropagatorZipkin} {
		t.Run(prop, func(t *testing.T) {
			col := newCollector(t)
			cfg := load(t, "telemetry:\n- kind: io.l5d.zipkin\n  url: "+col.srv.URL+"/api/v2/spans\n  sampleRate: 1.0\n  batchIntervalMs: 20\n")
			tm, err := cfg.NewTelemeter(telemetry.TelemeterEnv{Registry: telemetry.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			tf := tm.(telemetry.TracerFactory)
			trOut, err := tf.NewTracer(telemetry.TracerOptions{Router: "outgoing", Propagator: prop})
			if err != nil {
				t.Fatal(err)
			}
			trIn, err := tf.NewTracer(telemetry.TracerOptions{Router: "incoming", Propagator: prop})
			if err != nil {
				t.Fatal(err)
			}
			var backendHdr http.Header
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				backendHdr = r.Header.Clone()
				_, _ = w.Write([]byte("hello"))
			}))
			defer backend.Close()
			in := hop(t, trIn, backend.URL)
			out := hop(t, trOut, in.URL)

			resp, err := http.Get(out.URL + "/greet?x=1")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if err := tm.Close(); err != nil {
				t.Fatal(err)
			}
			spans := col.wait(t, 4, 5*time.Second)
			if len(spans) != 4 {
				t.Fatalf("collector got %d spans, want 4: %+v", len(spans), spans)
			}
			byKey := map[string]model.SpanModel{}
			for _, s := range spans {
				byKey[s.LocalEndpoint.ServiceName+"/"+string(s.Kind)] = s
				if s.TraceID != spans[0].TraceID {
					t.Fatalf("two trace ids: %v and %v", s.TraceID, spans[0].TraceID)
				}
			}
			s1, c1 := byKey["outgoing/SERVER"], byKey["outgoing/CLIENT"]
			s2, c2 := byKey["incoming/SERVER"], byKey["incoming/CLIENT"]
			if s1.ID == 0 || c1.ID == 0 || s2.ID == 0 || c2.ID == 0 {
				t.Fatalf("missing spans: %v", byKey)
			}
			if s1.ParentID != nil {
				t.Errorf("root server span has parent %v", *s1.ParentID)
			}
			if c1.ParentID == nil || *c1.ParentID != s1.ID {
				t.Errorf("hop 1 client parent %v, want %v", c1.ParentID, s1.ID)
			}
			if s2.ID != c1.ID || !s2.Shared || s2.ParentID == nil || *s2.ParentID != s1.ID {
				t.Errorf("hop 2 server span %v (shared %v, parent %v), want the id %v of hop 1's client span under %v", s2.ID, s2.Shared, s2.ParentID, c1.ID, s1.ID)
			}
			if c2.ParentID == nil || *c2.ParentID != s2.ID {
				t.Errorf("hop 2 client parent %v, want %v", c2.ParentID, s2.ID)
			}
			if s1.Tags[telemetry.TagNamerPath] != "/svc/hello" || s1.Tags[telemetry.TagRouterLabel] != "outgoing" || s1.Tags[telemetry.TagHTTPStatus] != "200" || s1.Tags[telemetry.TagHTTPMethod] != "GET" {
				t.Errorf("server span tags %v", s1.Tags)
			}
			if c1.RemoteEndpoint == nil || c1.Tags[telemetry.TagHTTPURI] != "/greet?x=1" {
				t.Errorf("client span: remote %v tags %v", c1.RemoteEndpoint, c1.Tags)
			}
			// What the application behind hop 2 receives.
			wantReqID := spans[0].TraceID.String()
			if got := backendHdr.Get(tracing.HeaderReqID); got != wantReqID {
				t.Errorf("l5d-reqid %q, want %q", got, wantReqID)
			}
			switch prop {
			case tracing.PropagatorDefault:
				sc, err := tracing.DecodeCtxTrace(backendHdr.Get(tracing.HeaderCtxTrace))
				if err != nil || sc.ID != c2.ID || sc.TraceID != c2.TraceID || sc.Sampled == nil || !*sc.Sampled {
					t.Errorf("l5d-ctx-trace at the backend: %+v %v, want span %v", sc, err, c2.ID)
				}
			case tracing.PropagatorZipkin:
				if backendHdr.Get("X-B3-Spanid") != c2.ID.String() || backendHdr.Get("X-B3-Traceid") != c2.TraceID.String() || backendHdr.Get("X-B3-Sampled") != "1" {
					t.Errorf("b3 headers at the backend: %v", backendHdr)
				}
				if backendHdr.Get(tracing.HeaderCtxTrace) != "" {
					t.Error("zipkin propagator wrote l5d-ctx-trace")
				}
			}
		})
	}
}

func TestSamplingHeadersHonoured(t *testing.T) {
	col := newCollector(t)
	cfg := load(t, "telemetry:\n- kind: io.l5d.zipkin\n  url: "+col.srv.URL+"/api/v2/spans\n  sampleRate: 1.0\n  batchIntervalMs: 20\n")
	tm, err := cfg.NewTelemeter(telemetry.TelemeterEnv{})
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := tm.(telemetry.TracerFactory).NewTracer(telemetry.TracerOptions{Router: "r"})
	var seen http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	defer backend.Close()
	srv := hop(t, tr, backend.URL)
	// l5d-sample: 0 turns sampling off for this request, and is removed.
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set(tracing.HeaderSample, "-3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seen.Get(tracing.HeaderSample) != "" {
		t.Error("l5d-sample forwarded")
	}
	sc, err := tracing.DecodeCtxTrace(seen.Get(tracing.HeaderCtxTrace))
	if err != nil || sc.Sampled == nil || *sc.Sampled {
		t.Errorf("downstream context %+v %v, want sampled=false", sc, err)
	}
	// An upstream "not sampled" decision is kept.
	no := false
	req, _ = http.NewRequest("GET", srv.URL, nil)
	req.Header.Set(tracing.HeaderCtxTrace, tracing.EncodeCtxTrace(model.SpanContext{TraceID: model.TraceID{Low: 77}, ID: 5, Sampled: &no}))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc, _ = tracing.DecodeCtxTrace(seen.Get(tracing.HeaderCtxTrace))
	if sc.TraceID.Low != 77 || sc.ParentID == nil || *sc.ParentID != 5 {
		t.Errorf("downstream context %+v, want a child of span 5 in trace 77", sc)
	}
	tm.Close() // flushes synchronously
	if spans := col.wait(t, 1, 100*time.Millisecond); len(spans) != 0 {
		t.Fatalf("unsampled requests reported %d spans", len(spans))
	}
}

func TestConfigErrors(t *testing.T) {
	c := load(t, "telemetry:\n- kind: io.l5d.zipkin\n")
	if c.Host != "localhost" || c.Port != 9410 || c.SampleRate != 0.001 || c.Endpoint() != "http://localhost:9410/api/v2/spans" {
		t.Fatalf("defaults %+v %s", c, c.Endpoint())
	}
	type doc struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	for _, bad := range []struct{ text, want string }{
		{"telemetry:\n- kind: io.l5d.zipkin\n  sampleRate: 2\n", "telemetry[0].sampleRate"},
		{"telemetry:\n- kind: io.l5d.zipkin\n  port: 0\n", "telemetry[0].port"},
		{"telemetry:\n- kind: io.l5d.zipkin\n  url: 'ftp://x'\n", "telemetry[0].url"},
		{"telemetry:\n- kind: io.l5d.zipkin\n  hots: x\n", "hots"},
	} {
		err := config.Load([]byte(bad.text), &doc{})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: got %v, want an error naming %s", bad.text, err, bad.want)
		}
	}
}
