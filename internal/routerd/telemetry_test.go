package routerd

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"

	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/tracing"
)

func modelContext(trace, span uint64, sampled *bool) model.SpanContext {
	return model.SpanContext{TraceID: model.TraceID{Low: trace}, ID: model.ID(span), Sampled: sampled}
}

// gauges reads every gauge and up-down counter of the process.
func gauges(p *Process) map[string]float64 {
	out := map[string]float64{}
	p.Registry().Each(func(m telemetry.Metric) {
		if m.Kind == telemetry.KindGauge {
			out[m.Name] = m.Gauge()
		}
	})
	return out
}

// Connections are counted on both sides while open and uncounted when
// closed; process gauges are published; trace headers are written by the
// tracer even without a tracing telemeter, and a clearContext server
// starts a new trace.
func TestConnectionGaugesAndPropagation(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("l5d-ctx-trace"))
	}))
	defer be.Close()
	port := be.Listener.Addr().String()[len("127.0.0.1:"):]
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: http
  label: a
  dtab: /svc/web => /$/inet/127.0.0.1/`+port+`;
  servers: [{port: 0}, {port: 0, clearContext: true}]
`)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Transport{}
	defer client.CloseIdleConnections()
	yes := true
	in := tracing.EncodeCtxTrace(modelContext(0xabc, 0x5, &yes))
	get := func(addr string) string {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "web"
		req.Header.Set("l5d-ctx-trace", in)
		resp, err := client.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	trusted, untrusted := p.ServerAddrs()[0], p.ServerAddrs()[1]
	sc, err := tracing.DecodeCtxTrace(get(trusted))
	if err != nil || sc.TraceID.Low != 0xabc || sc.ParentID == nil || *sc.ParentID != 0x5 {
		t.Errorf("trusted server: endpoint got %+v (%v); want a child of span 5 in trace abc", sc, err)
	}
	sc, err = tracing.DecodeCtxTrace(get(untrusted))
	if err != nil || sc.TraceID.Low == 0xabc {
		t.Errorf("clearContext server: endpoint got %+v (%v); want a new trace", sc, err)
	}

	srv := func(addr string) string {
		return "rt/a/server/" + strings.Replace(addr, ":", "/", 1) + "/"
	}
	cl := "rt/a/client/$/inet/127.0.0.1/" + port + "/connections"
	g := gauges(p)
	if g[srv(trusted)+"connections"] != 1 || g[srv(untrusted)+"connections"] != 1 || g[cl] != 1 {
		t.Errorf("while connected: server %v / %v, client %v; want 1, 1, 1",
			g[srv(trusted)+"connections"], g[srv(untrusted)+"connections"], g[cl])
	}
	for _, k := range []string{"process/uptime_ms", "process/goroutines", "process/mem/heap_bytes"} {
		if _, ok := g[k]; !ok {
			t.Errorf("no %s gauge", k)
		}
	}
	client.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g = gauges(p)
		if g[srv(trusted)+"connections"] == 0 && g[srv(untrusted)+"connections"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server connections still %v / %v after the client closed",
				g[srv(trusted)+"connections"], g[srv(untrusted)+"connections"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := map[string]int64{}
	p.Registry().Each(func(m telemetry.Metric) {
		if m.Kind == telemetry.KindCounter {
			c[m.Name] = m.Counter.Value()
		}
	})
	if c[srv(trusted)+"connects"] != 1 || c[srv(trusted)+"closes"] != 1 {
		t.Errorf("connects %d, closes %d; want 1, 1", c[srv(trusted)+"connects"], c[srv(trusted)+"closes"])
	}
}

// An h2 router counts its connections to an endpoint like an http one:
// one multiplexed connection for several requests.
func TestH2ClientConnectionGauge(t *testing.T) {
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	be.Config.Protocols = new(http.Protocols)
	be.Config.Protocols.SetUnencryptedHTTP2(true)
	be.Start()
	defer be.Close()
	port := be.Listener.Addr().String()[len("127.0.0.1:"):]
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: h2
  experimental: true
  label: h
  dtab: /svc/web => /$/inet/127.0.0.1/`+port+`;
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Transport{Protocols: new(http.Protocols)}
	client.Protocols.SetUnencryptedHTTP2(true)
	defer client.CloseIdleConnections()
	for range 3 {
		req, _ := http.NewRequest("GET", "http://"+p.ServerAddrs()[0]+"/", nil)
		req.Host = "web"
		resp, err := client.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "HTTP/2.0" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	}
	prefix := "rt/h/client/$/inet/127.0.0.1/" + port + "/"
	if g := gauges(p)[prefix+"connections"]; g != 1 {
		t.Errorf("%sconnections = %v, want 1", prefix, g)
	}
	var connects int64 = -1
	p.Registry().Each(func(m telemetry.Metric) {
		if m.Kind == telemetry.KindCounter && m.Name == prefix+"connects" {
			connects = m.Counter.Value()
		}
	})
	if connects != 1 {
		t.Errorf("%sconnects = %d, want 1", prefix, connects)
	}
}
