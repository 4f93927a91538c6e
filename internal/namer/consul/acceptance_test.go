package consul

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/namer/consul/consultest"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// backend serves its name on a loopback port and records the Host of the
// requests it gets.
func backend(t *testing.T, name string, hosts *sync.Map) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hosts != nil {
			hosts.Store(r.Host, true)
		}
		io.WriteString(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// TestRouterRoutesByConsul runs the real linnet binary as a router whose
// dtab names an io.l5d.consul namer: requests reach the instances
// registered in a real Consul agent, follow a registration change under
// load without a single failure, get the Host setHost gives them, and fall back through the dtab once the
// service is deregistered.
func TestRouterRoutesByConsul(t *testing.T) {
	a := consultest.Shared(t)
	var hosts sync.Map
	one, two, fallback := backend(t, "one", &hosts), backend(t, "two", &hosts), backend(t, "fallback", nil)
	a.Register(t, consultest.Service{ID: "accept-one", Name: "accept", Address: "127.0.0.1", Port: one})

	admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
	linnettest.StartRouter(t, fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
namers:
- kind: io.l5d.consul
  host: 127.0.0.1
  port: %d
  setHost: true
routers:
- protocol: http
  label: consul
  dtab: |
    /svc => /#/io.l5d.consul/.local;
    /svc/accept => /#/io.l5d.consul/.local/accept | /$/inet/127.0.0.1/%d;
  servers:
  - ip: 127.0.0.1
    port: %d
`, admin, a.Port(), fallback, port), admin)

	router := linnettest.NewRouter(t, port, "accept")
	router.Expect(t, 10*time.Second, "the registered instance", "one")

	// Load while the service moves from one instance to another
	// (register the new one, then deregister the old one).
	load := router.StartLoad(4, "one", "two")
	time.Sleep(300 * time.Millisecond)
	a.Register(t, consultest.Service{ID: "accept-two", Name: "accept", Address: "127.0.0.1", Port: two})
	time.Sleep(300 * time.Millisecond)
	a.Deregister(t, "accept-one")
	moved := linnettest.WaitFor(10*time.Second, func() bool {
		code, body, err := router.Get()
		return err == nil && code == 200 && body == "two"
	})
	time.Sleep(300 * time.Millisecond) // keep the load on after the move
	ok, failed, firstErr := load.Stop()
	if !moved {
		t.Fatal("traffic never moved to the new instance")
	}
	if n := failed; n > 0 {
		t.Fatalf("%d of %d requests failed during the registration change; first: %v", n, n+ok, firstErr)
	}
	if ok < 50 {
		t.Fatalf("only %d requests under load", ok)
	}
	t.Logf("%d requests, 0 failures, across the registration change", ok)
	for range 20 {
		if _, body, _ := router.Get(); body != "two" {
			t.Fatalf("after the move, a request reached %q", body)
		}
	}

	// setHost: the instances got Consul's DNS name of the service as Host.
	var seen []string
	hosts.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	if len(seen) != 1 || seen[0] != "accept.service.dc1.consul" {
		t.Errorf("backends saw Host %q, want only accept.service.dc1.consul (setHost)", seen)
	}

	// The admin state page shows the watched service.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/namer_state/io.l5d.consul.json", admin))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`"/#/io.l5d.consul/.local/accept":{"state":"bound","addresses":["127.0.0.1:%d"]}`, two); resp.StatusCode != 200 || !strings.Contains(string(page), want) {
		t.Errorf("namer state page: %d %s, want it to contain %s", resp.StatusCode, page, want)
	}

	// The service goes away: the dtab's fall-back applies.
	a.Deregister(t, "accept-two")
	router.Expect(t, 10*time.Second, "service deregistered", "fallback")
}
