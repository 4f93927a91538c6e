package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

func newTestAdmin(t *testing.T) (*httptest.Server, *atomic.Int32, *naming.StaticNamer) {
	t.Helper()
	namer := naming.NewStaticNamer(dtab.Path{"#", "t"}, map[string][]naming.Address{"web": {{Host: "127.0.0.1", Port: 8080, Weight: 1}}})
	namer.SetPending("slow")
	interp := naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "t"}, Namer: namer}})
	var shutdowns atomic.Int32
	reg := telemetry.NewRegistry()
	reg.Scope().Scope("rt", "r1").Counter("requests").Add(3)
	s := New(Params{
		Registry: reg,
		Config:   map[string]any{"routers": []any{map[string]any{"label": "r1"}}},
		Routers:  []RouterInfo{{Label: "r1", Dtab: dtab.MustParse("/svc=>/#/t"), Interpreter: interp}},
		Shutdown: func() { shutdowns.Add(1) },
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, &shutdowns, namer
}

func fetch(t *testing.T, method, u, ctype, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminBasics(t *testing.T) {
	t.Parallel()
	srv, shutdowns, _ := newTestAdmin(t)
	for _, c := range []struct {
		path string
		code int
		has  string
	}{
		{"/admin/ping", 200, "pong"},
		{"/admin", 200, "/admin/metrics.json"},
		{"/config.json", 200, `"label":"r1"`},
		{"/admin/metrics.json", 200, `"rt/r1/requests":3`},
		{"/delegator", 200, `data-dtab="/svc =&gt; /#/t;`},
		{"/admin/pprof/", 200, "goroutine"},
		{"/admin/server_info", 200, "linnet"},
	} {
		code, body := fetch(t, "GET", srv.URL+c.path, "", "")
		if code != c.code || !strings.Contains(body, c.has) {
			t.Errorf("GET %s: %d %.200q; want %d containing %q", c.path, code, body, c.code, c.has)
		}
	}
	if code, _ := fetch(t, "GET", srv.URL+"/admin/shutdown", "", ""); code != 405 {
		t.Errorf("GET /admin/shutdown = %d; want 405", code)
	}
	if code, body := fetch(t, "POST", srv.URL+"/admin/shutdown", "", ""); code != 200 || body != "quitting\n" {
		t.Errorf("POST /admin/shutdown = %d %q", code, body)
	}
	fetch(t, "POST", srv.URL+"/admin/shutdown", "", "")
	deadline := time.Now().Add(2 * time.Second)
	for shutdowns.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := shutdowns.Load(); n != 1 {
		t.Errorf("shutdown called %d times; want exactly once", n)
	}
}

func TestDelegatorJSON(t *testing.T) {
	t.Parallel()
	srv, _, _ := newTestAdmin(t)
	q := func(v url.Values) string { return srv.URL + "/delegator.json?" + v.Encode() }
	cases := []struct {
		method, url, ctype, body string
		code                     int
		has                      string
	}{
		{"GET", q(url.Values{"path": {"/svc/web"}, "namespace": {"r1"}, "dtab": {"/svc=>/#/t"}}), "", "", 200, `"port":8080`},
		{"POST", srv.URL + "/delegator.json", "application/json", `{"namespace":"r1","dtab":"/svc=>/#/t","path":"/svc/web"}`, 200, `"type":"delegate"`},
		// The router's dtab is not added: with no dtab the name is negative.
		{"GET", q(url.Values{"path": {"/svc/web"}, "namespace": {"r1"}}), "", "", 200, `"type":"neg"`},
		// Unknown namespace: only the /$/ namers.
		{"GET", q(url.Values{"path": {"/svc/x"}, "namespace": {"nope"}, "dtab": {"/svc=>/$/inet/127.0.0.1/9"}}), "", "", 200, `"port":9`},
		{"GET", q(url.Values{"path": {"/svc/web"}, "dtab": {"/svc=>"}}), "", "", 400, "Invalid dtab"},
		{"GET", q(url.Values{"path": {"svc"}}), "", "", 400, "Invalid path"},
		{"POST", srv.URL + "/delegator.json", "text/plain", "{}", 415, ""},
		{"POST", srv.URL + "/delegator.json", "application/json", "{not json", 400, "Malformed delegation request"},
		{"PUT", srv.URL + "/delegator.json", "", "", 405, ""},
		{"GET", q(url.Values{"path": {"/svc/slow"}, "namespace": {"r1"}, "dtab": {"/svc=>/#/t"}}), "", "", 503, "Request timed out."},
	}
	for _, c := range cases {
		code, body := fetch(t, c.method, c.url, c.ctype, c.body)
		if code != c.code || !strings.Contains(body, c.has) {
			t.Errorf("%s %s %s: %d %.300q; want %d containing %q", c.method, c.url, c.body, code, body, c.code, c.has)
		}
	}
}

func TestAdminSecurity(t *testing.T) {
	t.Parallel()
	sec, err := NewSecurity(true, false, false, []string{"/admin/ping"}, []string{"/delegator.*"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Params{Registry: telemetry.NewRegistry(), Security: sec}))
	defer srv.Close()
	for path, want := range map[string]int{
		"/admin/metrics.json": 200, // UI: enabled
		"/delegator":          404, // UI, but blacklisted
		"/delegator.json":     404,
		"/admin/ping":         200, // diagnostics: disabled, but whitelisted
		"/admin/pprof/":       404, // diagnostics: disabled
		"/admin/ping/x":       404, // the whitelist matches whole paths only
	} {
		if code, _ := fetch(t, "GET", srv.URL+path, "", ""); code != want {
			t.Errorf("GET %s = %d; want %d", path, code, want)
		}
	}
	if code, _ := fetch(t, "POST", srv.URL+"/admin/shutdown", "", ""); code != 404 {
		t.Errorf("POST /admin/shutdown with control disabled = %d; want 404", code)
	}
	if _, err := NewSecurity(true, true, true, []string{"("}, nil); err == nil {
		t.Error("bad regex accepted")
	}
}
