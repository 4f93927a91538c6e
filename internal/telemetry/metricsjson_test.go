package telemetry_test

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/telemetrytest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func get(t *testing.T, h http.Handler, target string) (int, http.Header, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestMetricsJSONGolden(t *testing.T) {
	reg := telemetry.NewRegistry()
	telemetrytest.Script(reg)
	h := telemetry.MetricsJSONHandler(reg)
	for _, tc := range []struct{ target, golden string }{
		{"/admin/metrics.json?pretty=true", "testdata/metrics_flat.golden"},
		{"/admin/metrics.json?tree=1&pretty=true", "testdata/metrics_tree.golden"},
		{"/admin/metrics.json?tree=1&pretty=true&q=rt/outgoing/client/%25/io.l5d.k8s.daemonset/default/incoming/l5d/%23/io.l5d.k8s/default/http/world-v1/service", "testdata/metrics_tree_q.golden"},
		{"/admin/metrics.json?q=rt/incoming/server", "testdata/metrics_flat_q.golden"},
	} {
		code, hdr, body := get(t, h, tc.target)
		if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: status %d, content type %q", tc.target, code, hdr.Get("Content-Type"))
		}
		telemetrytest.Golden(t, tc.golden, []byte(body), *update)
	}
}

func TestMetricsJSONShape(t *testing.T) {
	reg := telemetry.NewRegistry()
	telemetrytest.Script(reg)
	_, _, body := get(t, telemetry.MetricsJSONHandler(reg), "/admin/metrics.json")
	var flat map[string]float64
	if err := json.Unmarshal([]byte(body), &flat); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"rt/outgoing/server/0.0.0.0/4140/requests":                  42,
		"rt/outgoing/server/0.0.0.0/4140/success":                   40,
		"rt/outgoing/server/0.0.0.0/4140/failures":                  2,
		"rt/outgoing/server/0.0.0.0/4140/failures/ConnectionFailed": 1,
		"rt/outgoing/server/0.0.0.0/4140/status/2XX":                40,
		"rt/outgoing/server/0.0.0.0/4140/status/503":                1,
		"rt/outgoing/server/0.0.0.0/4140/status/error":              1,
		"rt/outgoing/service/svc/world/request_latency_ms.count":    42,
		"rt/outgoing/service/svc/world/request_latency_ms.max":      25,
		"rt/outgoing/service/svc/world/request_latency_ms.min":      1,
		"rt/incoming/client/$/inet/127.1/8888/requests":             10,
		"rt/incoming/dtab/size.count":                               0,
	}
	for k, v := range want {
		if got, ok := flat[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// An empty histogram shows only its count.
	if _, ok := flat["rt/incoming/dtab/size.p50"]; ok {
		t.Error("empty histogram exported percentiles")
	}
	if !strings.Contains(body, `"rt/outgoing/service/svc/world/request_latency_ms.p99":25`) {
		t.Errorf("compact output lacks p99: %.300s", body)
	}
}

func TestMetricsJSONTreeNodesKeepSlashes(t *testing.T) {
	reg := telemetry.NewRegistry()
	telemetrytest.Script(reg)
	_, _, body := get(t, telemetry.MetricsJSONHandler(reg), "/admin/metrics.json?tree=1")
	var tree map[string]any
	if err := json.Unmarshal([]byte(body), &tree); err != nil {
		t.Fatal(err)
	}
	node, ok := telemetry.Subtree(tree, "rt/incoming/client/$/inet/127.1/8888/requests")
	if !ok || node["counter"] != 10.0 {
		t.Fatalf("client node: %v %v", ok, node)
	}
	clients := tree["rt"].(map[string]any)["incoming"].(map[string]any)["client"].(map[string]any)
	if _, ok := clients["$/inet/127.1/8888"]; !ok {
		t.Fatalf("client id is not one node: keys %v", keys(clients))
	}
	lat, _ := telemetry.Subtree(tree, "rt/outgoing/server/0.0.0.0/4140/request_latency_ms")
	if lat["stat.count"] != 42.0 || lat["stat.p50"] == nil {
		t.Fatalf("stat node: %v", lat)
	}
	// A node that is both a value and a parent keeps both.
	f, _ := telemetry.Subtree(tree, "rt/outgoing/server/0.0.0.0/4140/failures")
	if f["counter"] != 2.0 || f["ConnectionFailed"] == nil {
		t.Fatalf("failures node: %v", f)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMetricsJSONErrors(t *testing.T) {
	reg := telemetry.NewRegistry()
	telemetrytest.Script(reg)
	h := telemetry.MetricsJSONHandler(reg)
	code, _, body := get(t, h, "/admin/metrics.json?tree=1&q=rt/nope")
	if code != http.StatusNotFound || strings.TrimSpace(body) != `{"error":"No such subtree: rt/nope"}` {
		t.Fatalf("unknown q: %d %s", code, body)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

func TestHistogramsRollPerInterval(t *testing.T) {
	reg := telemetry.NewRegistry()
	now := time.Unix(1000, 0)
	reg.SetClock(func() time.Time { return now })
	s := reg.Scope().Scope("rt", "r").Stat("request_latency_ms")
	s.Add(5)
	flat := telemetry.Flat(reg)
	if _, ok := flat["rt/r/request_latency_ms.count"]; ok {
		t.Fatal("histogram exported before its first interval ended")
	}
	now = now.Add(time.Minute)
	flat = telemetry.Flat(reg)
	if flat["rt/r/request_latency_ms.count"] != int64(1) || flat["rt/r/request_latency_ms.max"] != int64(5) {
		t.Fatalf("after one interval: %v", flat)
	}
	s.Add(9)
	flat = telemetry.Flat(reg) // same interval: still the last summary
	if flat["rt/r/request_latency_ms.max"] != int64(5) {
		t.Fatalf("summary changed within the interval: %v", flat)
	}
	now = now.Add(time.Minute)
	flat = telemetry.Flat(reg)
	if flat["rt/r/request_latency_ms.count"] != int64(1) || flat["rt/r/request_latency_ms.max"] != int64(9) {
		t.Fatalf("second interval: %v", flat)
	}
	now = now.Add(time.Minute)
	flat = telemetry.Flat(reg)
	if flat["rt/r/request_latency_ms.count"] != int64(0) {
		t.Fatalf("idle interval: %v", flat)
	}
	if _, ok := flat["rt/r/request_latency_ms.p50"]; ok {
		t.Fatal("idle histogram exported percentiles")
	}
}
