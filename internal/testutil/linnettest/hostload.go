package linnettest

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Router is a client of one router server that names its destination by
// Host, as the namers' acceptance tests drive a router started from
// config text.
type Router struct {
	c    *http.Client
	url  string
	host string
}

// NewRouter returns a client of the router server on 127.0.0.1:port
// sending Host: host; its idle connections are closed with the test.
func NewRouter(t testing.TB, port int, host string) *Router {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(c.CloseIdleConnections)
	return &Router{c: c, url: fmt.Sprintf("http://127.0.0.1:%d/", port), host: host}
}

// Get sends one GET and returns its status and body.
func (r *Router) Get() (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, r.url, nil)
	req.Host = r.host
	resp, err := r.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Expect waits up to within for a 200 answer with body want, failing t
// (naming what) with the last answer otherwise.
func (r *Router) Expect(t testing.TB, within time.Duration, what, want string) {
	t.Helper()
	var code int
	var body string
	var err error
	if !WaitFor(within, func() bool {
		code, body, err = r.Get()
		return err == nil && code == 200 && body == want
	}) {
		t.Fatalf("%s: got %d %q %v; want 200 %q", what, code, body, err, want)
	}
}

// Load is a steady load of GETs from several workers, each answer
// counted as good when it is a 200 with one of the accepted bodies.
type Load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	stop       chan struct{}
	wg         sync.WaitGroup
}

// StartLoad starts workers sending GETs until Stop.
func (r *Router) StartLoad(workers int, bodies ...string) *Load {
	l := &Load{stop: make(chan struct{})}
	good := func(body string) bool {
		for _, b := range bodies {
			if body == b {
				return true
			}
		}
		return false
	}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				code, body, err := r.Get()
				if err != nil || code != 200 || !good(body) {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", code, body, err))
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

// Stop ends the load and returns the good and failed answers, and the
// first failure.
func (l *Load) Stop() (ok, failed int64, firstErr any) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.firstErr.Load()
}
