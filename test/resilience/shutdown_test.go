package resilience

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// shutdownFixture is a router in front of an endpoint that holds each
// request for hold (or, for path /stuck, until the test ends).
type shutdownFixture struct {
	rt       *proc
	port     int
	inflight atomic.Int64
}

func newShutdownFixture(t *testing.T, hold time.Duration, graceMs int) *shutdownFixture {
	t.Helper()
	f := &shutdownFixture{}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	be := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		f.inflight.Add(1)
		if r.URL.Path == "/stuck" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		time.Sleep(hold)
		io.WriteString(w, "done")
	})
	dir := fsDir(t, map[string]string{"web": be.fsLine()})
	admin, port := freePort(t), freePort(t)
	cfg := strings.Replace(fsRouter(admin, port, dir, ""), "  port: "+fmt.Sprint(admin)+"\n",
		fmt.Sprintf("  port: %d\n  shutdownGraceMs: %d\n", admin, graceMs), 1)
	f.rt = start(t, "router", cfg, admin)
	f.port = port
	return f
}

// result of one request sent before shutdown.
type result struct {
	status int
	body   string
	err    error
}

// send starts n requests to path, each on its own connection, and
// returns a channel of their results.
func (f *shutdownFixture) send(n int, path string) <-chan result {
	out := make(chan result, n)
	for range n {
		go func() {
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", f.port, path), nil)
			req.Host = "web"
			resp, err := c.Do(req)
			if err != nil {
				out <- result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			out <- result{status: resp.StatusCode, body: string(b), err: err}
		}()
	}
	return out
}

// refusals dials the router port every 10ms from now until stop, and
// reports how many dials connected before the first refusal, how many
// after it, and when the first refusal came.
func (f *shutdownFixture) refusals(stop <-chan struct{}) func() (before, after int, first time.Duration) {
	var mu sync.Mutex
	var nBefore, nAfter int
	var firstRefused time.Duration
	t0 := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", f.port), time.Second)
			mu.Lock()
			switch {
			case err == nil:
				c.Close()
				if firstRefused == 0 {
					nBefore++
				} else {
					nAfter++
				}
			case isRefused(err) && firstRefused == 0:
				firstRefused = time.Since(t0)
			}
			mu.Unlock()
		}
	}()
	return func() (int, int, time.Duration) {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return nBefore, nAfter, firstRefused
	}
}

// SIGTERM while requests are in flight: those accepted complete, new
// connections are refused, and the process exits within the grace
// period even though one request would never finish.
func TestSIGTERMDrains(t *testing.T) {
	t.Parallel()
	const hold, graceMs, n = time.Second, 3000, 16
	f := newShutdownFixture(t, hold, graceMs)
	results := f.send(n, "/")
	stuck := f.send(1, "/stuck")
	if !waitFor(5*time.Second, func() bool { return f.inflight.Load() == n+1 }) {
		t.Fatalf("only %d of %d requests reached the endpoint", f.inflight.Load(), n+1)
	}

	stopDialing := make(chan struct{})
	_ = syscall.Kill(f.rt.PID(), syscall.SIGTERM)
	t0 := time.Now()
	dials := f.refusals(stopDialing)

	completed := 0
	for range n {
		r := <-results
		if r.err != nil || r.status != 200 || r.body != "done" {
			t.Errorf("in-flight request: %d %q %v; want 200 \"done\"", r.status, r.body, r.err)
			continue
		}
		completed++
	}
	var took time.Duration
	select {
	case <-f.rt.Exited():
		took = time.Since(t0)
	case <-time.After(time.Duration(graceMs)*time.Millisecond + 3*time.Second):
		t.Fatalf("linnet still running %v after SIGTERM (grace %dms)", time.Since(t0), graceMs)
	}
	close(stopDialing)
	before, after, firstRefused := dials()
	s := <-stuck
	t.Logf("SIGTERM: %d/%d in-flight requests completed, the never-ending one ended with %v; exit after %v (grace %dms, exit ok %v); "+
		"new connections: first refused %v after SIGTERM, %d connected before that, %d after",
		completed, n, s.err, took.Round(time.Millisecond), graceMs, f.rt.ExitState().Success(), firstRefused.Round(time.Millisecond), before, after)
	if took > time.Duration(graceMs)*time.Millisecond+time.Second {
		t.Errorf("exit took %v; want within the %dms grace (+1s)", took, graceMs)
	}
	if took < hold/2 {
		t.Errorf("exit after %v: before the in-flight requests could finish", took)
	}
	if !f.rt.ExitState().Success() {
		t.Errorf("exit status %v; want 0 after SIGTERM\n%s", f.rt.ExitState(), f.rt.Output())
	}
	if firstRefused == 0 || firstRefused > time.Second {
		t.Errorf("new connections were not refused within 1s of SIGTERM (first refusal %v)", firstRefused)
	}
	if after > 0 {
		t.Errorf("%d connections were accepted after the listener had started refusing", after)
	}
}

// POST /admin/shutdown does the same; other methods are refused.
func TestAdminShutdownDrains(t *testing.T) {
	t.Parallel()
	const hold, graceMs, n = time.Second, 5000, 8
	f := newShutdownFixture(t, hold, graceMs)

	resp, err := http.Get(f.rt.admin + "/admin/shutdown")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /admin/shutdown: %d Allow=%q; want 405 Allow=POST", resp.StatusCode, resp.Header.Get("Allow"))
	}

	results := f.send(n, "/")
	if !waitFor(5*time.Second, func() bool { return f.inflight.Load() == n }) {
		t.Fatalf("only %d of %d requests reached the endpoint", f.inflight.Load(), n)
	}
	t0 := time.Now()
	resp, err = http.Post(f.rt.admin+"/admin/shutdown", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "quitting\n" {
		t.Errorf("POST /admin/shutdown: %d %q; want 200 \"quitting\\n\"", resp.StatusCode, b)
	}
	completed := 0
	for range n {
		r := <-results
		if r.err != nil || r.status != 200 || r.body != "done" {
			t.Errorf("in-flight request: %d %q %v; want 200 \"done\"", r.status, r.body, r.err)
			continue
		}
		completed++
	}
	var took time.Duration
	select {
	case <-f.rt.Exited():
		took = time.Since(t0)
	case <-time.After(time.Duration(graceMs)*time.Millisecond + 3*time.Second):
		t.Fatalf("linnet still running %v after /admin/shutdown (grace %dms)", time.Since(t0), graceMs)
	}
	_, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", f.port), time.Second)
	t.Logf("/admin/shutdown: %d/%d in-flight requests completed; exit after %v (grace %dms); dial afterwards: %v",
		completed, n, took.Round(time.Millisecond), graceMs, err)
	if !isRefused(err) {
		t.Errorf("dial after shutdown: %v; want connection refused", err)
	}
	if took > time.Duration(graceMs)*time.Millisecond {
		t.Errorf("exit took %v; want within the %dms grace", took, graceMs)
	}
}
