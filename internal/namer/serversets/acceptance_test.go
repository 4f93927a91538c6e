package serversets

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
	"github.com/linnet-mesh/linnet/internal/zk/zktest"
)

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

// TestRouterRoutesByServersets runs the real linnet binary as a router
// whose dtab names an io.l5d.serversets namer: requests reach the members
// of a serverset in a real ZooKeeper, follow a member change under load
// without a single failure, the state page shows the watched znode, and
// the dtab's fall-back applies once the serverset has no live member.
func TestRouterRoutesByServersets(t *testing.T) {
	srv := zktest.Start(t)
	root := freshRoot()
	one, two, fallback := backend(t, "one"), backend(t, "two"), backend(t, "fallback")
	first, second := srv.Client(t), srv.Client(t)
	join(t, first, root+"/prod/web", member("127.0.0.1", one, "ALIVE"))

	admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
	linnettest.StartRouter(t, fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
namers:
- kind: io.l5d.serversets
  zkAddrs:
  - host: 127.0.0.1
    port: %d
routers:
- protocol: http
  label: zk
  dtab: |
    /svc => /#/io.l5d.serversets%s/prod | /$/inet/127.0.0.1/%d;
  servers:
  - ip: 127.0.0.1
    port: %d
`, admin, srv.HostPort().Port, root, fallback, port), admin)

	router := linnettest.NewRouter(t, port, "web")
	router.Expect(t, 15*time.Second, "the registered member", "one")

	// Load while the serverset moves from one member to another (the new
	// one joins, then the old one's session ends).
	load := router.StartLoad(4, "one", "two")
	time.Sleep(300 * time.Millisecond)
	join(t, second, root+"/prod/web", member("127.0.0.1", two, "ALIVE"))
	time.Sleep(300 * time.Millisecond)
	first.Close()
	moved := linnettest.WaitFor(15*time.Second, func() bool {
		code, body, err := router.Get()
		return err == nil && code == 200 && body == "two"
	})
	time.Sleep(300 * time.Millisecond)
	ok, failed, firstErr := load.Stop()
	if !moved {
		t.Fatal("traffic never moved to the new member")
	}
	if n := failed; n > 0 {
		t.Fatalf("%d of %d requests failed during the member change; first: %v", n, n+ok, firstErr)
	}
	if ok < 50 {
		t.Fatalf("only %d requests under load", ok)
	}
	t.Logf("%d requests, 0 failures, across the member change", ok)
	for range 20 {
		if _, body, _ := router.Get(); body != "two" {
			t.Fatalf("after the move, a request reached %q", body)
		}
	}

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/namer_state/io.l5d.serversets.json", admin))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`"%s/prod/web":{"state":"bound","members":1}`, root); resp.StatusCode != 200 || !strings.Contains(string(page), want) {
		t.Errorf("namer state page: %d %s, want it to contain %s", resp.StatusCode, page, want)
	}

	// The last member leaves: the serverset is negative, the fall-back applies.
	second.Close()
	router.Expect(t, 15*time.Second, "serverset without members", "fallback")
}
