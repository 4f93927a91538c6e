package h2

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// startSessionServer serves an "ok" handler with o on loopback (h2c) and
// counts the connections it accepts.
func startSessionServer(t *testing.T, o ServerOptions) (url string, conns *atomic.Int32) {
	t.Helper()
	conns = new(atomic.Int32)
	s := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		io.WriteString(w, "ok")
	}), o)
	s.HTTP.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return "http://" + ln.Addr().String() + "/", conns
}

func getOK(t *testing.T, c *http.Client, url string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(b) != "ok" || resp.ProtoMajor != 2 {
		t.Fatalf("GET %s: %s %d %q %v", url, resp.Proto, resp.StatusCode, b, err)
	}
}

// serverSession.lifeTimeMs on h2: a connection older than the lifetime
// gets a graceful GOAWAY with the response to its next request, which
// succeeds; the client's later requests go on a new connection.
func TestServerLifeTimeGoAway(t *testing.T) {
	t.Parallel()
	const life = 200 * time.Millisecond
	url, conns := startSessionServer(t, ServerOptions{LifeTime: life})
	c := h2cClient()
	defer c.CloseIdleConnections()
	start := time.Now()
	for n := 0; time.Since(start) < 5*life/2; n++ {
		getOK(t, c, url)
		time.Sleep(20 * time.Millisecond)
	}
	if n := conns.Load(); n < 3 || n > 4 {
		t.Errorf("server saw %d connections over %v of requests with a %v lifetime; want 3 (or 4 with a slow scheduler)", n, time.Since(start), life)
	}

	// A stream in flight when the connection ages finishes; the next
	// request opens a new connection.
	before := conns.Load()
	getOK(t, c, url+"?sleep=250ms")
	getOK(t, c, url)
	getOK(t, c, url)
	if n := conns.Load() - before; n != 1 {
		t.Errorf("%d new connections for a request that outlived the lifetime and two after it; want 1", n)
	}
}

// Without a lifetime, a busy connection lives on.
func TestServerNoLifeTime(t *testing.T) {
	t.Parallel()
	url, conns := startSessionServer(t, ServerOptions{})
	c := h2cClient()
	defer c.CloseIdleConnections()
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; time.Sleep(20 * time.Millisecond) {
		getOK(t, c, url)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections; want 1", n)
	}
}

// serverSession.idleTimeMs on h2: a connection without streams for that
// long is closed by the server; the client's next request needs a new
// one.
func TestServerIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 150 * time.Millisecond
	url, conns := startSessionServer(t, ServerOptions{IdleTimeout: idle})
	c := h2cClient()
	defer c.CloseIdleConnections()
	getOK(t, c, url)
	getOK(t, c, url)
	// Counted here rather than assumed to be 1: on a loaded machine the
	// two requests above can be more than idle apart.
	before := conns.Load()
	time.Sleep(idle + 150*time.Millisecond)
	getOK(t, c, url)
	if n := conns.Load(); n != before+1 {
		t.Errorf("server saw %d connections after %d and an idle gap of %v; want the idle one closed and one new", n, before, idle+150*time.Millisecond)
	}
}
