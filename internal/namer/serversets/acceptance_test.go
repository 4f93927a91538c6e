package serversets

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	get := func() (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		req.Host = "web"
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	expect := func(what, want string) {
		t.Helper()
		var code int
		var body string
		var err error
		if !linnettest.WaitFor(15*time.Second, func() bool {
			code, body, err = get()
			return err == nil && code == 200 && body == want
		}) {
			t.Fatalf("%s: got %d %q %v; want 200 %q", what, code, body, err, want)
		}
	}
	expect("the registered member", "one")

	// Load while the serverset moves from one member to another (the new
	// one joins, then the old one's session ends).
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := get()
				if err != nil || code != 200 || (body != "one" && body != "two") {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", code, body, err))
					continue
				}
				ok.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	join(t, second, root+"/prod/web", member("127.0.0.1", two, "ALIVE"))
	time.Sleep(300 * time.Millisecond)
	first.Close()
	moved := linnettest.WaitFor(15*time.Second, func() bool {
		code, body, err := get()
		return err == nil && code == 200 && body == "two"
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if !moved {
		t.Fatal("traffic never moved to the new member")
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during the member change; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 50 {
		t.Fatalf("only %d requests under load", ok.Load())
	}
	t.Logf("%d requests, 0 failures, across the member change", ok.Load())
	for range 20 {
		if _, body, _ := get(); body != "two" {
			t.Fatalf("after the move, a request reached %q", body)
		}
	}

	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/namer_state/io.l5d.serversets.json", admin))
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
	expect("serverset without members", "fallback")
}
