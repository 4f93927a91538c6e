package marathon

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// backend serves its name on a loopback port.
func backend(t *testing.T, name string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// TestRouterRoutesByMarathon runs the real linnet binary as a router with
// Linkerd's documented DC/OS dtab (domainToPathPfx onto the namer): a
// request for Host accept.shop reaches the task of app /shop/accept,
// follows a task replacement under load without a single failure, keeps
// flowing while Marathon is unreachable, and falls back through the dtab
// once the app is removed.
func TestRouterRoutesByMarathon(t *testing.T) {
	m := startMarathon(t, "", nil)
	one, two, fallback := backend(t, "one"), backend(t, "two"), backend(t, "fallback")
	m.addApp(map[string]any{"id": "/shop/accept", "instances": 1, "healthChecks": []any{}, "tasks": []any{}})
	m.addTask("/shop/accept", "shop_accept.one", "127.0.0.1", one)

	admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
	linnettest.StartRouter(t, fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
namers:
- kind: io.l5d.marathon
  host: 127.0.0.1
  port: %s
  ttlMs: 50
routers:
- protocol: http
  label: marathon
  dtab: |
    /marathonId => /#/io.l5d.marathon;
    /svc => /$/io.buoyant.http.domainToPathPfx/marathonId;
    /marathonId/shop/accept => /#/io.l5d.marathon/shop/accept | /$/inet/127.0.0.1/%d;
  servers:
  - ip: 127.0.0.1
    port: %d
`, admin, m.port(), fallback, port), admin)

	router := linnettest.NewRouter(t, port, "accept.shop")
	router.Expect(t, 10*time.Second, "the app's task", "one")

	// Load while the app's task is replaced, and while Marathon is down.
	load := router.StartLoad(4, "one", "two")
	time.Sleep(200 * time.Millisecond)
	m.addTask("/shop/accept", "shop_accept.two", "127.0.0.1", two)
	time.Sleep(200 * time.Millisecond)
	m.removeTask("/shop/accept", "shop_accept.one")
	moved := linnettest.WaitFor(10*time.Second, func() bool { // the removal seen: only "two" answers
		for range 10 {
			if code, body, err := router.Get(); err != nil || code != 200 || body != "two" {
				return false
			}
		}
		return true
	})
	m.setDown(true)
	time.Sleep(500 * time.Millisecond) // ten polls fail meanwhile
	ok, failed, firstErr := load.Stop()
	if !moved {
		t.Fatal("traffic never moved to the new task")
	}
	if n := failed; n > 0 {
		t.Fatalf("%d of %d requests failed across the task change and the outage; first: %v", n, n+ok, firstErr)
	}
	if ok < 50 {
		t.Fatalf("only %d requests under load", ok)
	}
	t.Logf("%d requests, 0 failures, across the task change and Marathon's outage", ok)
	for range 20 {
		if code, body, err := router.Get(); body != "two" {
			t.Fatalf("after the move, with Marathon down: %d %q %v", code, body, err)
		}
	}

	// The admin state page shows the watched app and Marathon's failure.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/namer_state/io.l5d.marathon.json", admin))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`"/#/io.l5d.marathon/shop/accept":{"state":"bound","addresses":["127.0.0.1:%d"],"error":"io.l5d.marathon: app /shop/accept: GET `, two)
	if resp.StatusCode != 200 || !strings.Contains(string(page), want) {
		t.Errorf("namer state page: %d %s, want it to contain %s", resp.StatusCode, page, want)
	}

	// Marathon is back and the app is gone: the dtab's fall-back applies.
	m.removeApp("/shop/accept")
	m.setDown(false)
	router.Expect(t, 10*time.Second, "app removed", "fallback")
}
