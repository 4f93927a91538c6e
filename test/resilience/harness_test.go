// Package resilience runs the real linnet binary from configuration text
// against real loopback backends that are killed, slowed, made to fail
// and swapped while load runs, and checks what callers see: failover,
// retries within budget, latency-aware balancing, graceful shutdown,
// live dtab and endpoint changes, deadlines, and a hostile HTTP edge.
package resilience

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// proc is one running linnet process (router or namerd) and its admin
// base URL.
type proc struct {
	*linnettest.Proc
	admin string // http://127.0.0.1:<admin port>
}

// start runs `linnet <role> -` with config on stdin and waits until its
// admin server answers; it is stopped (SIGTERM, by PID) when the test
// ends.
func start(t *testing.T, role, config string, adminPort int) *proc {
	t.Helper()
	var p *linnettest.Proc
	switch role {
	case "router":
		p = linnettest.StartRouter(t, config, adminPort)
	case "namerd":
		p = linnettest.StartNamerd(t, config, adminPort)
	default:
		t.Fatalf("unknown role %q", role)
	}
	return &proc{Proc: p, admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort)}
}

// metrics reads the process's /admin/metrics.json.
func (p *proc) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	return linnettest.Metrics(t, p.admin)
}

// metricsLike returns the metrics whose names contain every part.
func metricsLike(m map[string]float64, parts ...string) map[string]float64 {
	out := map[string]float64{}
next:
	for k, v := range m {
		for _, p := range parts {
			if !strings.Contains(k, p) {
				continue next
			}
		}
		out[k] = v
	}
	return out
}

// sum adds the metrics whose names end with suffix and contain every part.
func sum(m map[string]float64, suffix string, parts ...string) float64 {
	var s float64
	for k, v := range metricsLike(m, parts...) {
		if strings.HasSuffix(k, suffix) {
			s += v
		}
	}
	return s
}

func dump(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s = %g\n", k, m[k])
	}
	return b.String()
}

// backend is a loopback HTTP server on a fixed port that can be killed
// (listener and every connection closed at once) and restarted on the
// same port. It counts the requests it answered.
type backend struct {
	t    *testing.T
	name string
	port int
	h    http.Handler
	hits atomic.Int64

	mu  sync.Mutex
	srv *http.Server
}

func newBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{t: t, name: name}
	b.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, name)
	})
	b.listen("127.0.0.1:0")
	t.Cleanup(b.kill)
	return b
}

func (b *backend) listen(addr string) {
	b.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("backend %s: %v", b.name, err)
	}
	b.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: b.h, ReadHeaderTimeout: 10 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(ln)
}

// kill closes the listener and every connection, in-flight or idle.
func (b *backend) kill() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// restart serves again on the same port.
func (b *backend) restart() { b.listen(fmt.Sprintf("127.0.0.1:%d", b.port)) }

func (b *backend) fsLine() string { return fmt.Sprintf("127.0.0.1 %d\n", b.port) }

// writeFile replaces a file atomically (write then rename), as a
// configuration management tool would, so a watcher never sees it half
// written.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(filepath.Dir(path)), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// load is a pool of clients sending GETs through the router.
type load struct {
	url, host string
	client    *http.Client
	sent      atomic.Int64
	ok        atomic.Int64
	stop      chan struct{}
	wg        sync.WaitGroup

	mu       sync.Mutex
	failures []string
	byBody   map[string]int
}

func newLoad(routerPort int, host string, workers int) *load {
	return &load{
		url:    fmt.Sprintf("http://127.0.0.1:%d/", routerPort),
		host:   host,
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}},
		stop:   make(chan struct{}),
		byBody: map[string]int{},
	}
}

// one sends one request and records its outcome.
func (l *load) one() {
	l.sent.Add(1)
	req, _ := http.NewRequest("GET", l.url, nil)
	req.Host = l.host
	resp, err := l.client.Do(req)
	if err != nil {
		l.fail(err.Error())
		return
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		l.fail("reading body: " + err.Error())
		return
	}
	if resp.StatusCode != 200 {
		l.fail(fmt.Sprintf("status %d: %.200q", resp.StatusCode, b))
		return
	}
	l.ok.Add(1)
	l.mu.Lock()
	l.byBody[string(b)]++
	l.mu.Unlock()
}

func (l *load) fail(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, s)
}

// run sends n requests with the given concurrency and returns when all
// have been answered.
func (l *load) run(n, workers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				l.one()
			}
		})
	}
	wg.Wait()
}

// background sends requests continuously until halt.
func (l *load) background(workers int) {
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one()
			}
		})
	}
}

func (l *load) halt() {
	close(l.stop)
	l.wg.Wait()
	l.client.CloseIdleConnections()
}

// counts returns a copy of the per-body success counts.
func (l *load) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.byBody))
	for k, v := range l.byBody {
		out[k] = v
	}
	return out
}

func (l *load) failed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}

// requireNoFailures fails the test with a sample of the failures.
func (l *load) requireNoFailures(t *testing.T) {
	t.Helper()
	if f := l.failed(); len(f) > 0 {
		n := min(len(f), 5)
		t.Errorf("%d of %d requests failed; first: %s", len(f), l.sent.Load(), strings.Join(f[:n], " | "))
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int { return linnettest.FreePort(t) }

// waitFor polls cond until it holds or within passes.
func waitFor(within time.Duration, cond func() bool) bool { return linnettest.WaitFor(within, cond) }

// isRefused reports whether err is a refused TCP connection.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
