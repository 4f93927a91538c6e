package namerd

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRouterFollowsNamerdThrift is the walkthrough's setup: a router with
// `interpreter: {kind: io.l5d.namerd}` against namerd's
// io.l5d.thriftNameInterpreter (ThriftMux), the dtab changed with
// `linnet dtab update`; namerd is killed and restarted under traffic and no
// request may fail.
func TestRouterFollowsNamerdThrift(t *testing.T) {
	v1, v2 := backend(t, "world-v1"), backend(t, "world-v2")
	ndAdmin, ndAPI, ndThrift := freePort(t), freePort(t), freePort(t)
	cfg := namerdConfig(ndAdmin, ndAPI, "  kind: io.linnet.file\n  dir: "+t.TempDir()) +
		fmt.Sprintf("- kind: io.l5d.thriftNameInterpreter\n  port: %d\n", ndThrift)
	nd := start(t, "namerd", cfg, ndAdmin)
	base := fmt.Sprintf("http://127.0.0.1:%d", ndAPI)
	inet := func(p int) string { return fmt.Sprintf("/$/inet/127.0.0.1/%d", p) }
	dtabCLI(t, base, fmt.Sprintf("/svc/world => %s;\n", inet(v1)), "create", "internal", "-").want(t, 0, "Created internal\n")

	rtAdmin, rtPort := freePort(t), freePort(t)
	start(t, "router", fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
routers:
- protocol: http
  label: outgoing
  interpreter:
    kind: io.l5d.namerd
    dst: /$/inet/127.0.0.1/%d
    namespace: internal
    retry:
      baseSeconds: 1
      maxSeconds: 1
  servers:
  - ip: 127.0.0.1
    port: %d
`, rtAdmin, ndThrift, rtPort), rtAdmin)

	// The router's admin delegator explains through namerd's thrift
	// interface.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/delegator.json?namespace=outgoing&path=/svc/world&dtab=", rtAdmin))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`"id":"/$/inet/127.0.0.1/%d"`, v1); resp.StatusCode != 200 || !strings.Contains(string(body), want) {
		t.Fatalf("router delegator: %d %s", resp.StatusCode, body)
	}

	tr := sendTraffic(t, fmt.Sprintf("http://127.0.0.1:%d/", rtPort), "world", 4)
	tr.awaitOnly(t, "world-v1", 50, 10*time.Second)

	changed := time.Now()
	dtabCLI(t, base, fmt.Sprintf("/svc/world => 0.9 * %s & 0.1 * %s;\n", inet(v1), inet(v2)), "update", "internal", "-").want(t, 0, "Updated internal\n")
	for tr.window()["world-v2"] == 0 {
		if time.Since(changed) > 3*time.Second {
			t.Fatal("the 9:1 split did not reach the router within 3s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("9:1 split reached the router in %v", time.Since(changed))
	time.Sleep(2 * time.Second)
	w := tr.window()
	share := float64(w["world-v2"]) / float64(w["world-v1"]+w["world-v2"])
	t.Logf("9:1 window: %v (v2 share %.3f)", w, share)
	if share < 0.04 || share > 0.2 {
		t.Errorf("v2 share %.3f under a 9:1 split, want about 0.1", share)
	}

	// namerd dies: the router keeps routing with what it knows.
	nd.stop(syscall.SIGKILL)
	time.Sleep(time.Second)
	w = tr.window()
	if w["world-v1"] == 0 || w["world-v2"] == 0 {
		t.Errorf("while namerd is down the split should hold: %v", w)
	}
	nd.run()
	dtabCLI(t, base, fmt.Sprintf("/svc/world => %s;\n", inet(v2)), "update", "internal", "-").want(t, 0, "Updated internal\n")
	took := tr.awaitOnly(t, "world-v2", 50, 10*time.Second)
	t.Logf("after namerd's restart, the full shift reached the router within %v", took)

	tr.halt()
	if f := tr.failed(); len(f) > 0 {
		t.Fatalf("%d requests failed (of %d): %v", len(f), tr.total.Load(), f)
	}
	t.Logf("%d requests, none failed", tr.total.Load())
}
