package namerd

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

func backend(t *testing.T, name string) int {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	return port
}

// inet is the dtab path of a loopback port.
func inet(port int) string { return fmt.Sprintf("/$/inet/127.0.0.1/%d", port) }

// traffic sends requests to a router continuously and counts, per
// window, which backend answered and how many requests failed.
type traffic struct {
	mu       sync.Mutex
	counts   map[string]int
	failures []string
	stop     chan struct{}
	wg       sync.WaitGroup
	total    atomic.Int64
}

func sendTraffic(t *testing.T, url, host string, workers int) *traffic {
	tr := &traffic{counts: map[string]int{}, stop: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		tr.wg.Go(func() {
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", url, nil)
				req.Host = host
				resp, err := client.Do(req)
				var body string
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					body = string(b)
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d: %q", resp.StatusCode, body)
					}
				}
				tr.total.Add(1)
				tr.mu.Lock()
				if err != nil {
					if len(tr.failures) < 20 {
						tr.failures = append(tr.failures, err.Error())
					} else {
						tr.failures = append(tr.failures[:19], fmt.Sprintf("... and more (last: %v)", err))
					}
				} else {
					tr.counts[body]++
				}
				tr.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	t.Cleanup(tr.halt)
	return tr
}

func (tr *traffic) halt() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.wg.Wait()
}

// window resets the counts and returns those of the past window.
func (tr *traffic) window() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	c := tr.counts
	tr.counts = map[string]int{}
	return c
}

func (tr *traffic) failed() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.failures...)
}

// awaitOnly waits until a whole window of at least n requests went to want
// only, and returns how long that took.
func (tr *traffic) awaitOnly(t *testing.T, want string, n int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	tr.window()
	for time.Since(start) < within {
		time.Sleep(100 * time.Millisecond)
		w := tr.window()
		total := 0
		for _, c := range w {
			total += c
		}
		if total >= n && w[want] == total {
			return time.Since(start)
		}
	}
	t.Fatalf("traffic did not go only to %s within %v (last window %v)", want, within, tr.window())
	return 0
}

// TestRouterFollowsNamerd is the walkthrough's traffic shift with a real
// router using io.l5d.namerd.http: 9:1, then everything to v2, while
// namerd is killed and restarted; no request may fail.
func TestRouterFollowsNamerd(t *testing.T) {
	routerFollowsNamerd(t, "", "default", "web", func(apiPort, _ int) string {
		return fmt.Sprintf("kind: io.l5d.namerd.http\nexperimental: true\ndst: /$/inet/127.0.0.1/%d\nnamespace: default\nretry:\n  baseSeconds: 0.1\n  maxSeconds: 1\n", apiPort)
	})
}

// routerFollowsNamerd runs shiftUnderTraffic with a real namerd (the file
// store; the HTTP API, plus an interface of kind iface unless it is "")
// and a router labelled label whose interpreter block is interp (its
// keys, unindented), given the ports of namerd's HTTP API and of iface.
// /svc/world starts at v1 in namerd namespace ns, created with `linnet
// dtab create`.
func routerFollowsNamerd(t *testing.T, iface, ns, label string, interp func(apiPort, ifacePort int) string) {
	v1, v2 := backend(t, "world-v1"), backend(t, "world-v2")
	ndAdmin, ndAPI, ndIface := freePort(t), freePort(t), freePort(t)
	cfg := namerdConfig(ndAdmin, ndAPI, "  kind: io.linnet.file\n  dir: "+t.TempDir())
	if iface != "" {
		cfg += fmt.Sprintf("- kind: %s\n  port: %d\n", iface, ndIface)
	}
	nd := start(t, "namerd", cfg, ndAdmin)
	base := fmt.Sprintf("http://127.0.0.1:%d", ndAPI)
	dtabCLI(t, base, fmt.Sprintf("/svc/world => %s;\n", inet(v1)), "create", ns, "-").want(t, 0, "Created "+ns+"\n")

	rtAdmin, rtPort := startRouter(t, label, interp(ndAPI, ndIface))
	shiftUnderTraffic(t, shift{
		namerd: nd, namerdAPI: base, namespace: ns,
		routerAdmin: rtAdmin, routerPort: rtPort, label: label,
		v1: v1, v2: v2,
	})
}

// startRouter runs a router labelled label, serving HTTP on a free
// loopback port, whose interpreter block is interp (its keys, one a line,
// unindented). It returns the router's admin and serving ports.
func startRouter(t *testing.T, label, interp string) (adminPort, port int) {
	t.Helper()
	adminPort, port = freePort(t), freePort(t)
	var block strings.Builder
	for line := range strings.Lines(interp) {
		block.WriteString("    " + line)
	}
	start(t, "router", fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
routers:
- protocol: http
  label: %s
  interpreter:
%s  servers:
  - ip: 127.0.0.1
    port: %d
`, adminPort, label, block.String(), port), adminPort)
	return adminPort, port
}

// shift is a router following namerd, with /svc/world => v1 in the
// namerd namespace, and a second backend v2 to shift traffic to.
type shift struct {
	namerd      *linnettest.Proc
	namerdAPI   string // namerd's HTTP API base URL, for `linnet dtab`
	namespace   string
	routerAdmin int
	routerPort  int
	label       string // the router's label (its delegator namespace)
	v1, v2      int    // backend ports, answering world-v1 and world-v2
}

// shiftUnderTraffic is the walkthrough's traffic shift under load: 9:1,
// then everything to v2, while namerd is killed and restarted; no
// request may fail.
func shiftUnderTraffic(t *testing.T, s shift) {
	t.Helper()
	// The router's admin delegator explains through namerd.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/delegator.json?namespace=%s&path=/svc/world&dtab=", s.routerAdmin, s.label))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`"id":"/$/inet/127.0.0.1/%d"`, s.v1); resp.StatusCode != 200 || !strings.Contains(string(body), want) {
		t.Fatalf("router delegator: %d %s", resp.StatusCode, body)
	}

	tr := sendTraffic(t, fmt.Sprintf("http://127.0.0.1:%d/", s.routerPort), "world", 4)
	tr.awaitOnly(t, "world-v1", 50, 10*time.Second)

	// 9:1.
	changed := time.Now()
	dtabCLI(t, s.namerdAPI, fmt.Sprintf("/svc/world => 0.9 * %s & 0.1 * %s;\n", inet(s.v1), inet(s.v2)), "update", s.namespace, "-").want(t, 0, "Updated "+s.namespace+"\n")
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
	s.namerd.Stop(syscall.SIGKILL)
	time.Sleep(time.Second)
	w = tr.window()
	if w["world-v1"] == 0 || w["world-v2"] == 0 {
		t.Errorf("while namerd is down the split should hold: %v", w)
	}
	s.namerd.Rerun()
	dtabCLI(t, s.namerdAPI, fmt.Sprintf("/svc/world => %s;\n", inet(s.v2)), "update", s.namespace, "-").want(t, 0, "Updated "+s.namespace+"\n")
	took := tr.awaitOnly(t, "world-v2", 50, 10*time.Second)
	t.Logf("after namerd's restart, the full shift reached the router within %v", took)

	tr.halt()
	if f := tr.failed(); len(f) > 0 {
		t.Fatalf("%d requests failed (of %d): %v", len(f), tr.total.Load(), f)
	}
	t.Logf("%d requests, none failed", tr.total.Load())
}
