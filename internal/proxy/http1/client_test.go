package http1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func clientFor(t *testing.T, rawURL string) *Client {
	t.Helper()
	c := NewClient(strings.TrimPrefix(rawURL, "http://"), TransportOptions{})
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func get(t *testing.T, c *Client, method, u string) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func TestClientReusesConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			io.WriteString(w, "ok")
		}
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	defer be.Close()
	c := clientFor(t, be.URL)
	for i, m := range []string{"GET", "HEAD", "GET", "DELETE", "GET"} {
		resp, body, err := get(t, c, m, be.URL+"/")
		if err != nil || resp.StatusCode != 200 || (m != "HEAD" && body != "ok") {
			t.Fatalf("request %d (%s): %v %v %q", i, m, resp, err, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("backend saw %d connections for 5 sequential requests; want 1 (keep-alive)", n)
	}
}

// oneShotServer answers each connection's first request and closes the
// connection without saying so: the stale pooled connection case.
func oneShotServer(t *testing.T) (addr string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				_ = req
			}()
		}
	}()
	return ln.Addr().String(), conns
}

func TestClientRetriesStaleConnection(t *testing.T) {
	t.Parallel()
	addr, conns := oneShotServer(t)
	c := clientFor(t, "http://"+addr)
	for i := range 3 {
		if _, body, err := get(t, c, "GET", "http://"+addr+"/"); err != nil || body != "ok" {
			t.Fatalf("request %d: %v %q; want ok over a fresh connection", i, err, body)
		}
		time.Sleep(10 * time.Millisecond) // let the server's close arrive
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections; want 3 (each stale one replaced)", n)
	}
	// A POST that may have been delivered is not resent.
	time.Sleep(10 * time.Millisecond)
	req, _ := http.NewRequest("POST", "http://"+addr+"/", nil)
	if resp, err := c.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Errorf("POST on a stale connection succeeded; want the error, not a silent resend")
	}
}

func TestClientEarlyCloseAndCancel(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", "10000000")
			buf := make([]byte, 64<<10)
			for i := 0; i < 10000000/len(buf); i++ {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		case "/hang":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer be.Close()
	defer close(release)
	c := clientFor(t, be.URL)

	req, _ := http.NewRequest("GET", be.URL+"/big", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 1000))
	done := make(chan struct{})
	go func() { resp.Body.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("closing a 10 MB body early blocked (it must not drain)")
	}
	if _, body, err := get(t, c, "GET", be.URL+"/"); err != nil || body != "ok" {
		t.Fatalf("after an early close: %v %q", err, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", be.URL+"/hang", nil)
	start := time.Now()
	_, err = c.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("hanging endpoint: %v after %v; want the context's deadline error promptly", err, time.Since(start))
	}
	if _, body, err := get(t, c, "GET", be.URL+"/"); err != nil || body != "ok" {
		t.Fatalf("after a cancelled request: %v %q", err, body)
	}
}

func TestClientSkipsInterimResponses(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "final")
	}))
	defer be.Close()
	resp, body, err := get(t, clientFor(t, be.URL), "GET", be.URL+"/")
	if err != nil || resp.StatusCode != 200 || body != "final" {
		t.Errorf("got %v %v %q; want the final 200", resp, err, body)
	}
}

func TestClientDialError(t *testing.T) {
	t.Parallel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, _, err := get(t, clientFor(t, "http://"+addr), "GET", "http://"+addr+"/")
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Errorf("err = %v; want a dial *net.OpError", err)
	}
}

// The router's end-of-response hook (router.BodyEndHook) fires once: with
// the status's failure at EOF or on an early Close, with true after a
// read error; a body that has ended takes no hook.
func TestConnBodyEndHook(t *testing.T) {
	t.Parallel()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cut":
			// Promise 10 bytes, send 2, then drop the connection.
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(200)
			io.WriteString(w, "ab")
			w.(http.Flusher).Flush()
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
		case "/fail":
			w.Header().Set("Content-Length", "2")
			w.WriteHeader(503)
			io.WriteString(w, "no")
		default:
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "ok")
		}
	}))
	defer be.Close()
	c := clientFor(t, be.URL)
	for _, tc := range []struct {
		path       string
		readAll    bool
		wantFailed bool
	}{
		{"/", true, false},
		{"/fail", true, true},
		{"/", false, false}, // closed before EOF: not a failure of the endpoint
		{"/cut", true, true},
	} {
		req, _ := http.NewRequest("GET", be.URL+tc.path, nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		h, ok := resp.Body.(interface {
			OnEnd(func(bool), bool) bool
		})
		if !ok {
			t.Fatalf("%s: body %T has no OnEnd", tc.path, resp.Body)
		}
		var calls []bool
		if !h.OnEnd(func(f bool) { calls = append(calls, f) }, resp.StatusCode >= 500) {
			t.Fatalf("%s: OnEnd refused a fresh body", tc.path)
		}
		if h.OnEnd(func(bool) {}, false) {
			t.Errorf("%s: OnEnd took a second hook", tc.path)
		}
		if tc.readAll {
			io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		resp.Body.Close()
		if len(calls) != 1 || calls[0] != tc.wantFailed {
			t.Errorf("%s: hook calls %v, want [%v]", tc.path, calls, tc.wantFailed)
		}
		if h.OnEnd(func(bool) {}, false) {
			t.Errorf("%s: OnEnd took a hook after the end", tc.path)
		}
	}
}
