package http1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startServerCounting is startServer with a fallback server that counts
// the connections handed to it.
func startServerCounting(t *testing.T, h http.Handler) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var handedOff atomic.Int64
	fallback := &http.Server{ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			handedOff.Add(1)
		}
	}}
	s := NewServer(h, fallback, nil)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String(), &handedOff
}

// readHTTP10UntilClose reads what the server sends until it closes the
// connection; it fails the test if the server keeps it open.
func readHTTP10UntilClose(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("connection not closed by the server: %v (read %q)", err, b)
	}
	return string(b)
}

func TestFastServerHTTP10(t *testing.T) {
	t.Parallel()
	addr, handedOff := startServerCounting(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Proto != "HTTP/1.0" {
			t.Errorf("handler saw %s", r.Proto)
		}
		switch r.URL.Path {
		case "/len":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/stream":
			// Unknown length: no chunking for a 1.0 client.
			io.WriteString(w, "ab")
			w.(http.Flusher).Flush()
			io.WriteString(w, "cd")
		}
	}))

	t.Run("close by default", func(t *testing.T) {
		c, br := rawConn(t, addr)
		io.WriteString(c, "GET /len HTTP/1.0\r\nHost: x\r\n\r\n")
		got := readHTTP10UntilClose(t, c, br)
		if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "\r\n\r\nhello") ||
			!strings.Contains(got, "Content-Length: 5\r\n") || !strings.Contains(got, "Connection: close\r\n") {
			t.Errorf("response:\n%s", got)
		}
	})

	t.Run("keep-alive with a length", func(t *testing.T) {
		c, br := rawConn(t, addr)
		for i := 0; i < 2; i++ {
			io.WriteString(c, "GET /len HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
			req, _ := http.NewRequest("GET", "/len", nil)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "hello" || resp.Header.Get("Connection") != "keep-alive" || resp.Close {
				t.Fatalf("request %d: %q, Connection %q, close %v", i, b, resp.Header.Get("Connection"), resp.Close)
			}
		}
	})

	t.Run("unknown length is delimited by close", func(t *testing.T) {
		c, br := rawConn(t, addr)
		// Even when keep-alive is asked for: without a length or chunking
		// the end of the connection is the end of the body.
		io.WriteString(c, "GET /stream HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
		got := readHTTP10UntilClose(t, c, br)
		head, body, _ := strings.Cut(got, "\r\n\r\n")
		if body != "abcd" || strings.Contains(head, "Transfer-Encoding") || !strings.Contains(head, "Connection: close") {
			t.Errorf("response:\n%s", got)
		}
	})

	if n := handedOff.Load(); n != 0 {
		t.Errorf("%d HTTP/1.0 connections were handed to net/http; want the fast path", n)
	}
}
