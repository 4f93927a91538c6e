package e2e

// rt/<router>/client/<id>/connects (spec headers-admin.md §6.1, core):
// the connections a real `linnet router` opens for a client.

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// TestClientConnects: keep-alive requests reuse one connection, so
// connects stays 1; once the backend closes its idle connections the next
// request opens a new one, and connects grows (it never goes down).
func TestClientConnects(t *testing.T) {
	t.Parallel()
	// The backend remembers its connections so that the test can close
	// the idle ones, as a backend with a short idle timeout would.
	var mu sync.Mutex
	idle := map[net.Conn]bool{}
	accepted := 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: text("ok"),
		ConnState: func(c net.Conn, s http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			switch s {
			case http.StateNew:
				accepted++
			case http.StateIdle:
				idle[c] = true
			default:
				delete(idle, c)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	closeIdle := func() {
		mu.Lock()
		defer mu.Unlock()
		for c := range idle {
			c.Close()
			delete(idle, c)
		}
	}
	backendAccepted := func() int {
		mu.Lock()
		defer mu.Unlock()
		return accepted
	}
	bport := ln.Addr().(*net.TCPAddr).Port

	adminPort, port := freePort(t), freePort(t)
	rt := startRouter(t, oneRouter(adminPort, port, fmt.Sprintf("/svc/web => /$/inet/127.0.0.1/%d;", bport), "", ""), adminPort)
	routerURL := fmt.Sprintf("http://127.0.0.1:%d/", port)
	key := fmt.Sprintf("rt/web/client/$/inet/127.0.0.1/%d/connects", bport)
	connects := func() float64 {
		t.Helper()
		v, ok := metrics(t, rt)[key]
		if !ok {
			t.Fatalf("no %s in /admin/metrics.json", key)
		}
		return v
	}
	get := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if code, _, body := send(t, "GET", routerURL, "web", nil, nil); code != 200 || body != "ok" {
				t.Fatalf("request %d: %d %q", i, code, body)
			}
		}
	}

	const n = 20
	get(n)
	if got := connects(); got != 1 {
		t.Errorf("after %d keep-alive requests: %s = %v; want 1", n, key, got)
	}
	for round := 2; round <= 3; round++ {
		// Close the router's pooled connection from the backend side, then
		// send more requests: the first finds the pooled connection dead
		// and the router dials a new one.
		if !linnettest.WaitFor(5*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(idle) == 1
		}) {
			t.Fatalf("round %d: the backend does not hold exactly one idle connection", round)
		}
		closeIdle()
		get(n)
		if got := connects(); got != float64(round) {
			t.Errorf("round %d: after the backend closed the idle connection and %d more requests: %s = %v; want %d", round, n, key, got, round)
		}
	}
	if got, want := connects(), float64(backendAccepted()); got != want {
		t.Errorf("%s = %v, but the backend accepted %v connections", key, got, want)
	}
}
