package e2e

// The admin server's /logging and /logging.json (spec headers-admin.md
// §5.1, §5.3) on a real `linnet router` and `linnet namerd`, sharing the
// level of the CLI's -log.level, and POST /admin/shutdown?grace=.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// loggingLevels reads /logging.json: [{"logger":"root","level":"INFO"}].
func loggingLevels(t *testing.T, admin string) string {
	t.Helper()
	code, h, body := adminFetch(t, "GET", admin+"/logging.json", "", "")
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /logging.json: %d %q %q", code, h.Get("Content-Type"), body)
	}
	var l []struct{ Logger, Level string }
	if err := json.Unmarshal([]byte(body), &l); err != nil || len(l) != 1 || l[0].Logger != "root" {
		t.Fatalf("GET /logging.json: %q (%v); want one logger, root", body, err)
	}
	return l[0].Level
}

// setLevel changes the level through /logging.json as Linkerd's page does
// (a form post with logger and level).
func setLevel(t *testing.T, admin, level string) {
	t.Helper()
	form := url.Values{"logger": {"root"}, "level": {level}}.Encode()
	if code, _, body := adminFetch(t, "POST", admin+"/logging.json", "application/x-www-form-urlencoded", form); code != 200 {
		t.Fatalf("POST /logging.json level=%s: %d %q", level, code, body)
	}
}

// TestLoggingLevelAtRunTime: the router starts at the CLI's level; a POST
// to /logging.json turns DEBUG lines on, another turns them off again,
// without a restart.
func TestLoggingLevelAtRunTime(t *testing.T) {
	t.Parallel()
	adminPort, port := freePort(t), freePort(t)
	// /svc/web is negative: every request gets a 502, which the server
	// edge logs at DEBUG ("request failed") with the request's path.
	rt := startRouter(t, oneRouter(adminPort, port, "/svc/web => !;", "", ""), adminPort, "-log.level=INFO")
	routerURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	failing := func(marker string) {
		t.Helper()
		if code, _, _ := send(t, "GET", routerURL+"/"+marker, "web", nil, nil); code != http.StatusBadGateway {
			t.Fatalf("GET /%s: %d; want 502 (negative name)", marker, code)
		}
	}
	debugLine := func(marker string) bool {
		for _, l := range strings.Split(rt.Output(), "\n") {
			if strings.Contains(l, "level=DEBUG") && strings.Contains(l, marker) {
				return true
			}
		}
		return false
	}

	if got := loggingLevels(t, rt.admin); got != "INFO" {
		t.Errorf("level at start with -log.level=INFO: %s", got)
	}
	failing("before-debug")

	setLevel(t, rt.admin, "DEBUG")
	if got := loggingLevels(t, rt.admin); got != "DEBUG" {
		t.Errorf("level after POST level=DEBUG: %s", got)
	}
	failing("while-debug")
	if !linnettest.WaitFor(5*time.Second, func() bool { return debugLine("while-debug") }) {
		t.Fatalf("no DEBUG line for /while-debug after setting DEBUG:\n%s", rt.Output())
	}

	setLevel(t, rt.admin, "WARNING")
	if got := loggingLevels(t, rt.admin); got != "WARNING" {
		t.Errorf("level after POST level=WARNING: %s", got)
	}
	failing("after-debug")

	// The page shows the level and embeds the same list as Linkerd's.
	code, h, page := adminFetch(t, "GET", rt.admin+"/logging", "", "")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, `<script id="logger-data" type="application/json">[{"logger":"root","level":"WARNING"}]</script>`) {
		t.Errorf("GET /logging: %d %q\n%s", code, h.Get("Content-Type"), page)
	}
	// A bad level is refused, naming it, and changes nothing.
	if code, _, body := adminFetch(t, "POST", rt.admin+"/logging.json", "application/x-www-form-urlencoded", "level=LOUD"); code != 400 || !strings.Contains(body, `"LOUD"`) {
		t.Errorf("POST level=LOUD: %d %q; want 400 naming LOUD", code, body)
	}
	if got := loggingLevels(t, rt.admin); got != "WARNING" {
		t.Errorf("level after a refused change: %s", got)
	}

	// Stop the process so that its whole output has been read, then look
	// for the requests made outside DEBUG.
	rt.Stop(syscall.SIGTERM)
	if debugLine("before-debug") || debugLine("after-debug") {
		t.Errorf("DEBUG lines logged while the level was INFO or WARNING:\n%s", rt.Output())
	}
	// The INFO lines of the shutdown are gone too (level WARNING).
	if strings.Contains(rt.Output(), `msg="shutting down"`) {
		t.Errorf("an INFO line was logged at level WARNING:\n%s", rt.Output())
	}
}

// TestNamerdLogging: namerd's admin server serves the same endpoints,
// starting from its -log.level.
func TestNamerdLogging(t *testing.T) {
	t.Parallel()
	adminPort, apiPort := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
storage:
  kind: io.l5d.inMemory
  namespaces:
    default: /svc => /$/inet/127.0.0.1/1
interfaces:
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: %d
`, adminPort, apiPort)
	nd := linnettest.Start(t, linnettest.Options{
		Args:  []string{"namerd", "-log.level=ERROR", "-"},
		Stdin: cfg,
		Ready: fmt.Sprintf("http://127.0.0.1:%d/admin/ping", adminPort),
	})
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	if got := loggingLevels(t, admin); got != "ERROR" {
		t.Errorf("namerd level at start with -log.level=ERROR: %s", got)
	}
	setLevel(t, admin, "INFO")
	if got := loggingLevels(t, admin); got != "INFO" {
		t.Errorf("namerd level after POST level=INFO: %s", got)
	}
	// The shutdown's INFO lines now appear.
	nd.Stop(syscall.SIGTERM)
	if !strings.Contains(nd.Output(), `level=INFO msg=stopped`) {
		t.Errorf("no INFO line after raising the level to INFO:\n%s", nd.Output())
	}
}

// TestAdminShutdownGrace: POST /admin/shutdown?grace= bounds the drain by
// that duration instead of admin.shutdownGraceMs; a bad value is a 400
// and the router keeps running.
func TestAdminShutdownGrace(t *testing.T) {
	t.Parallel()
	var inflight atomic.Int32
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	_, bport := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	adminPort, port := freePort(t), freePort(t)
	cfg := strings.Replace(oneRouter(adminPort, port, fmt.Sprintf("/svc/web => /$/inet/127.0.0.1/%d;", bport), "", ""),
		"  port: "+fmt.Sprint(adminPort), "  port: "+fmt.Sprint(adminPort)+"\n  shutdownGraceMs: 60000", 1)
	rt := startRouter(t, cfg, adminPort)

	if code, _, body := adminFetch(t, "POST", rt.admin+"/admin/shutdown?grace=soon", "", ""); code != 400 || !strings.Contains(body, `"soon" is not a valid duration`) {
		t.Errorf("grace=soon: %d %q; want 400 naming the value", code, body)
	}
	if code, _, _ := adminFetch(t, "GET", rt.admin+"/admin/ping", "", ""); code != 200 {
		t.Fatalf("router not running after a refused shutdown: %d", code)
	}

	// A request that never finishes by itself holds the drain.
	go func() {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/hold", port), nil)
		req.Host = "web"
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if !linnettest.WaitFor(5*time.Second, func() bool { return inflight.Load() == 1 }) {
		t.Fatal("the held request did not reach the backend")
	}
	t0 := time.Now()
	if code, _, body := adminFetch(t, "POST", rt.admin+"/admin/shutdown?grace=1.second", "", ""); code != 200 || body != "quitting\n" {
		t.Fatalf("POST grace=1.second: %d %q", code, body)
	}
	select {
	case <-rt.Exited():
	case <-time.After(15 * time.Second):
		t.Fatalf("still running %v after shutdown?grace=1.second with a request in flight (shutdownGraceMs 60000)", time.Since(t0))
	}
	took := time.Since(t0)
	t.Logf("exit %v after POST /admin/shutdown?grace=1.second (shutdownGraceMs: 60000, one request held)", took.Round(time.Millisecond))
	if took < time.Second {
		t.Errorf("exit after %v: the in-flight request was not given its 1s grace", took)
	}
	if took > 10*time.Second {
		t.Errorf("exit after %v: grace=1.second did not bound the drain", took)
	}
	if st := rt.ExitState(); st == nil || st.ExitCode() != 0 {
		t.Errorf("exit state %v; want 0", st)
	}
}
