package e2e

// Conformance of the admin server with spec/headers-admin.md §5 (every
// endpoint's method, status and content type; the security categories)
// and the core metric names of §6.1, driven through the real binary.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// adminFetch sends one request to the admin server and returns status,
// headers and body.
func adminFetch(t *testing.T, method, u, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, u, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// jsonPath walks nested JSON objects.
func jsonPath(v any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// TestAdminEndpointsConformance: every admin endpoint of §5.1 that Linnet
// serves answers with the documented method handling, status and content
// type, and the shape its consumers (dashboard, namerctl-style tools,
// Prometheus, health checks) read.
func TestAdminEndpointsConformance(t *testing.T) {
	t.Parallel()
	hello := confEcho(t, "hello")
	admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
	cfg := fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: http
  label: web
  dtab: |
    /svc/hello => /$/inet/127.0.0.1/%d;
  servers: [{ip: 127.0.0.1, port: %d}]
telemetry:
- kind: io.l5d.prometheus
- kind: io.l5d.recentRequests
  sampleRate: 1.0
`, admin, hello, port)
	linnettest.StartRouter(t, cfg, admin)
	if res := confRaw(t, port, confRequest("HTTP/1.1", "/", "hello", nil)); res.status != 200 {
		t.Fatalf("routing a request first: status %d", res.status)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", admin)
	serverKey := fmt.Sprintf("rt/web/server/127.0.0.1/%d/requests", port)
	dq := func(v url.Values) string { return "/delegator.json?" + v.Encode() }
	okDelegate := url.Values{"path": {"/svc/hello"}, "namespace": {"web"}, "dtab": {fmt.Sprintf("/svc=>/$/inet/127.0.0.1/%d", hello)}}

	type tc struct {
		method, path string
		reqType      string // request Content-Type
		reqBody      string
		status       int
		ctype        string // the response Content-Type starts with this
		body         string // exact body, when set
		has          []string
		check        func(t *testing.T, h http.Header, body string)
	}
	cases := []tc{
		{method: "GET", path: "/admin/ping", status: 200, ctype: "text/plain", body: "pong"},
		{method: "POST", path: "/admin/ping", status: 200, ctype: "text/plain", body: "pong"},
		{method: "GET", path: "/admin/metrics.json", status: 200, ctype: "application/json", check: func(t *testing.T, _ http.Header, body string) {
			var m map[string]float64
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatalf("not a flat object of numbers: %v", err)
			}
			if m[serverKey] < 1 {
				t.Errorf("%s = %v; want at least 1", serverKey, m[serverKey])
			}
		}},
		{method: "GET", path: "/admin/metrics.json?pretty=true", status: 200, ctype: "application/json", check: func(t *testing.T, _ http.Header, body string) {
			if !strings.HasPrefix(body, "{\n  \"") {
				t.Errorf("not indented: %.60q", body)
			}
			if i, j := strings.Index(body, `"rt/web/server/`), strings.Index(body, `"rt/web/service/`); i < 0 || j < 0 || i > j {
				t.Errorf("keys not sorted (server at %d, service at %d)", i, j)
			}
		}},
		{method: "GET", path: "/admin/metrics.json?tree=1", status: 200, ctype: "application/json", check: func(t *testing.T, _ http.Header, body string) {
			var v any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatal(err)
			}
			// A server label (ip/port) is one tree node.
			if n, ok := jsonPath(v, "rt", "web", "server", fmt.Sprintf("127.0.0.1/%d", port), "requests", "counter"); !ok || n.(float64) < 1 {
				t.Errorf("tree has no rt/web/server/127.0.0.1|%d/requests counter (got %v)", port, n)
			}
		}},
		{method: "GET", path: "/admin/metrics.json?q=rt/web/service", status: 200, ctype: "application/json", check: func(t *testing.T, _ http.Header, body string) {
			if !strings.Contains(body, `"rt/web/service/svc/hello/requests":1`) || strings.Contains(body, "rt/web/server/") {
				t.Errorf("q=rt/web/service: %.200s; want only that subtree", body)
			}
		}},
		{method: "GET", path: "/admin/metrics.json?q=no/such", status: 404, ctype: "application/json", check: func(t *testing.T, _ http.Header, body string) {
			var m map[string]string
			if json.Unmarshal([]byte(body), &m) != nil || m["error"] != "No such subtree: no/such" || len(m) != 1 {
				t.Errorf("body %q; want {\"error\": \"No such subtree: no/such\"}", body)
			}
		}},
		{method: "GET", path: "/admin/metrics/prometheus", status: 200, ctype: "text/plain", check: func(t *testing.T, _ http.Header, body string) {
			found := false
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, "rt:server:requests{") && strings.Contains(l, `rt="web"`) &&
					strings.Contains(l, fmt.Sprintf(`server="127.0.0.1/%d"`, port)) && strings.HasSuffix(l, "} 1") {
					found = true
				}
			}
			if !found {
				t.Errorf("no rt:server:requests{rt=\"web\", server=\"127.0.0.1/%d\"} 1 line", port)
			}
		}},
		{method: "GET", path: "/config.json", status: 200, ctype: "application/json", check: func(t *testing.T, _ http.Header, body string) {
			var v any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatal(err)
			}
			if l, _ := jsonPath(v, "admin", "port"); l != float64(admin) {
				t.Errorf("admin.port = %v; want %d", l, admin)
			}
			rs, _ := jsonPath(v, "routers")
			if list, ok := rs.([]any); !ok || len(list) != 1 || list[0].(map[string]any)["label"] != "web" {
				t.Errorf("routers = %v; want the one router labelled web", rs)
			}
			// Absent options stay absent (no defaults written in).
			if _, ok := jsonPath(v, "namers"); ok {
				t.Errorf("config.json has a namers key the config did not have")
			}
			if !strings.Contains(body, "=>") {
				t.Errorf("dtab arrows are escaped: %.200s", body)
			}
		}},
		{method: "GET", path: dq(okDelegate), status: 200, ctype: "application/json",
			has: []string{`"type":"delegate"`, `"path":"/svc/hello"`, fmt.Sprintf(`"port":%d`, hello)}},
		{method: "POST", path: "/delegator.json", reqType: "application/json", status: 200, ctype: "application/json",
			reqBody: fmt.Sprintf(`{"namespace":"web","dtab":"/svc=>/$/inet/127.0.0.1/%d","path":"/svc/hello"}`, hello),
			has:     []string{`"type":"delegate"`, fmt.Sprintf(`"port":%d`, hello)}},
		// The base dtab is not added: without dtab, /svc/hello is neg.
		{method: "GET", path: dq(url.Values{"path": {"/svc/hello"}, "namespace": {"web"}}), status: 200, ctype: "application/json",
			has: []string{`"type":"neg"`}},
		// An unknown namespace still resolves /$/ names.
		{method: "GET", path: dq(url.Values{"path": {"/svc/hello"}, "namespace": {"nope"}, "dtab": okDelegate["dtab"]}), status: 200,
			ctype: "application/json", has: []string{fmt.Sprintf(`"port":%d`, hello)}},
		{method: "GET", path: dq(url.Values{"path": {"svc/hello"}, "namespace": {"web"}}), status: 400},
		{method: "GET", path: dq(url.Values{"path": {"/svc/hello"}, "namespace": {"web"}, "dtab": {"/svc=>"}}), status: 400},
		{method: "POST", path: "/delegator.json", reqType: "text/plain", reqBody: "{}", status: 415},
		{method: "PUT", path: "/delegator.json", status: 405},
		{method: "GET", path: "/admin/shutdown", status: 405, check: func(t *testing.T, h http.Header, _ string) {
			if h.Get("Allow") != "POST" {
				t.Errorf("Allow %q; want POST", h.Get("Allow"))
			}
		}},
		{method: "GET", path: "/", status: 200, ctype: "text/html"},
		{method: "GET", path: "/?router=web", status: 200, ctype: "text/html"},
		{method: "GET", path: "/services", status: 200, ctype: "text/html"},
		{method: "GET", path: "/delegator", status: 200, ctype: "text/html", has: []string{"web"}},
		{method: "GET", path: "/requests", status: 200, ctype: "text/html", has: []string{"/svc/hello"}},
		{method: "GET", path: "/admin", status: 200, ctype: "text/plain",
			has: []string{"/admin/ping\n", "/admin/metrics.json\n", "/admin/metrics/prometheus\n", "/config.json\n", "/delegator.json\n", "/admin/shutdown\n"}},
		{method: "GET", path: "/admin/index.txt", status: 200, ctype: "text/plain", has: []string{"/admin/ping\n", "/admin/threads\n"}},
		{method: "GET", path: "/admin/server_info", status: 200, ctype: "application/json", has: []string{`"version"`}},
		{method: "GET", path: "/admin/metrics/usage", status: 200, ctype: "application/json"},
		{method: "GET", path: "/admin/threads", status: 200, ctype: "text/plain", has: []string{"goroutine "}},
		{method: "GET", path: "/admin/threads.json", status: 200, ctype: "application/json", check: func(t *testing.T, _ http.Header, body string) {
			var v struct {
				Threads map[string]struct {
					Thread, State string
					Stack         []string
				} `json:"threads"`
			}
			if err := json.Unmarshal([]byte(body), &v); err != nil || len(v.Threads) == 0 {
				t.Fatalf("threads.json %.200q: %v; want a non-empty threads object", body, err)
			}
			for id, th := range v.Threads {
				if th.Thread != "goroutine "+id || th.State == "" || len(th.Stack) == 0 {
					t.Errorf("thread %s = %+v; want its name, state and stack", id, th)
				}
			}
		}},
		{method: "GET", path: "/admin/contention", status: 200, ctype: "text/plain"},
		{method: "GET", path: "/admin/pprof/contention?seconds=1", status: 200, ctype: "application/octet-stream"},
		{method: "GET", path: "/admin/pprof/heap", status: 200, ctype: "application/octet-stream"},
		{method: "GET", path: "/admin/pprof/profile?seconds=1", status: 200, ctype: "application/octet-stream"},
		// §5.1 note: there is no /dashboard, and /admin/metrics is not served.
		{method: "GET", path: "/dashboard", status: 404},
		{method: "GET", path: "/admin/metrics", status: 404},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			status, h, body := adminFetch(t, c.method, base+c.path, c.reqType, c.reqBody)
			if status != c.status {
				t.Fatalf("status %d; want %d (body %.200q)", status, c.status, body)
			}
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
				t.Errorf("Content-Type %q; want %s", ct, c.ctype)
			}
			if c.body != "" && body != c.body {
				t.Errorf("body %q; want %q", body, c.body)
			}
			for _, s := range c.has {
				if !strings.Contains(body, s) {
					t.Errorf("body %.300q; want it to contain %q", body, s)
				}
			}
			if c.check != nil {
				c.check(t, h, body)
			}
		})
	}
}

// TestAdminSecurityConformance: admin.security (§5.2) through the
// binary: categories switch off whole groups of paths (404), the
// whitelist reopens single paths, the blacklist beats everything.
func TestAdminSecurityConformance(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T, security, ready string) (base string, p *linnettest.Proc) {
		admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
		cfg := fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
  security:
%s
routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1;
  servers: [{ip: 127.0.0.1, port: %d}]
telemetry:
- kind: io.l5d.prometheus
`, admin, indent(security, "    "), port)
		base = fmt.Sprintf("http://127.0.0.1:%d", admin)
		p = linnettest.Start(t, linnettest.Options{Args: []string{"router", "-"}, Stdin: cfg, Ready: base + ready})
		return base, p
	}
	type probe struct {
		method, path string
		want         int
	}
	for _, c := range []struct {
		name, security, ready string
		probes                []probe
	}{{
		name: "ui and control off, one UI path whitelisted, prometheus blacklisted",
		security: `uiEnabled: false
controlEnabled: false
pathWhitelist: ['/config\.json']
pathBlacklist: ['/admin/metrics/prom.*']`,
		ready: "/admin/ping",
		probes: []probe{
			{"GET", "/admin/ping", 200},                 // diagnostics
			{"GET", "/admin/threads", 200},              // diagnostics
			{"GET", "/admin/server_info", 200},          // diagnostics
			{"GET", "/admin/metrics/prometheus", 404},   // diagnostics, but blacklisted
			{"GET", "/admin/metrics.json", 404},         // UI
			{"GET", "/", 404},                           // UI
			{"GET", "/delegator", 404},                  // UI
			{"GET", "/delegator.json?path=/a", 404},     // UI
			{"GET", "/config.json", 200},                // UI, whitelisted
			{"GET", "/config.json/x", 404},              // whitelist matches whole paths
			{"POST", "/admin/shutdown", 404},            // control
			{"GET", "/admin/ping", 200},                 // still running after the refused shutdown
			{"GET", "/admin/pprof/heap?debug=1", 200},   // diagnostics
			{"GET", "/admin/metrics/usage", 200},        // diagnostics
			{"GET", "/admin/threads.json", 200},         // diagnostics
			{"GET", "/admin/contention", 200},           // diagnostics
			{"GET", "/admin/index.txt", 200},            // diagnostics
			{"GET", "/services", 200},                   // not in the UI list: diagnostics
			{"GET", "/admin/metrics/prometheus/x", 404}, // blacklisted by the regex
		},
	}, {
		name: "diagnostics off, delegator.json blacklisted",
		security: `diagnosticsEnabled: false
pathBlacklist: ['/delegator\.json']`,
		ready: "/admin/metrics.json",
		probes: []probe{
			{"GET", "/admin/ping", 404},
			{"GET", "/admin/metrics/prometheus", 404},
			{"GET", "/admin/threads", 404},
			{"GET", "/admin/metrics.json", 200},
			{"GET", "/config.json", 200},
			{"GET", "/", 200},
			{"GET", "/delegator", 200},
			{"GET", "/delegator.json?path=/a&namespace=x", 404}, // UI, but blacklisted
			{"GET", "/admin/shutdown", 405},                     // control is on: reached, wrong method
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			base, p := start(t, c.security, c.ready)
			for _, pr := range c.probes {
				if code, _, body := adminFetch(t, pr.method, base+pr.path, "", ""); code != pr.want {
					t.Errorf("%s %s = %d; want %d (body %.100q)", pr.method, pr.path, code, pr.want, body)
				}
			}
			if st := p.ExitState(); st != nil {
				t.Errorf("router exited (%v); a refused /admin/shutdown must not stop it", st)
			}
		})
	}
}

// TestCoreMetricNamesConformance: after a success, an application
// failure and a connection failure, the core metric set of §6.1 exists
// under the server, service, client and client × service scopes with
// Linkerd's names.
func TestCoreMetricNamesConformance(t *testing.T) {
	t.Parallel()
	be := confEcho(t, "be")
	dead := linnettest.FreePort(t)
	admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
	cfg := fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: http
  label: out
  dtab: |
    /svc/be => /$/inet/127.0.0.1/%d;
    /svc/dead => /$/inet/127.0.0.1/%d;
  servers: [{ip: 127.0.0.1, port: %d}]
`, admin, be, dead, port)
	linnettest.StartRouter(t, cfg, admin)
	for _, h := range []struct {
		host string
		hdr  [][2]string
		want int
	}{{"be", nil, 200}, {"be", [][2]string{{"X-Reply-Status", "500"}}, 500}, {"dead", nil, 502}} {
		if res := confRaw(t, port, confRequest("HTTP/1.1", "/", h.host, h.hdr)); res.status != h.want {
			t.Fatalf("Host %s: status %d; want %d", h.host, res.status, h.want)
		}
	}
	m := linnettest.Metrics(t, fmt.Sprintf("http://127.0.0.1:%d", admin))
	server := fmt.Sprintf("rt/out/server/127.0.0.1/%d/", port)
	service := "rt/out/service/svc/be/"
	client := fmt.Sprintf("rt/out/client/$/inet/127.0.0.1/%d/", be)
	want := map[string]float64{
		server + "requests": 3, server + "success": 1, server + "failures": 2,
		server + "status/200": 1, server + "status/500": 1, server + "status/502": 1,
		server + "status/2XX": 1, server + "status/5XX": 2,
		service + "requests": 2, service + "success": 1, service + "failures": 1, service + "status/500": 1,
		client + "requests": 2, client + "success": 1, client + "failures": 1, client + "status/2XX": 1,
		client + "service/svc/be/requests": 2, client + "service/svc/be/success": 1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present: %v); want %v", k, got, ok, v)
		}
	}
	// Present with any value: gauges and the retry and balancer families.
	// Histograms (request_latency_ms, retries/per_request...) are absent
	// until their first one-minute snapshot (§6.1), longer than this
	// test; test/observability's golden files pin their names.
	for _, k := range []string{
		server + "pending", server + "connections", server + "connects",
		service + "pending", service + "retries/total", service + "retries/budget_exhausted", service + "retries/budget",
		client + "pending", client + "connections",
		client + "retries/requeues", client + "retries/budget_exhausted",
		client + "retries/budget", client + "loadbalancer/size", client + "loadbalancer/available",
		client + "failure_accrual/removals", client + "failure_accrual/revivals",
		client + "failure_accrual/removed_for_ms", client + "failure_accrual/probes",
	} {
		if _, ok := m[k]; !ok {
			t.Errorf("metric %s is missing", k)
		}
	}
	// A failure is counted under a stable kind name as well.
	found := false
	for k := range m {
		if strings.HasPrefix(k, fmt.Sprintf("rt/out/client/$/inet/127.0.0.1/%d/failures/", dead)) {
			found = true
		}
	}
	if !found {
		t.Errorf("no failures/<kind> counter for the refused connection to port %d", dead)
	}
}
