package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func startTimedServer(t *testing.T, timeout time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), &http.Server{ReadHeaderTimeout: timeout, MaxHeaderBytes: 8 << 10}, nil)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// readAllUntilClose reads what the server sends until it closes the
// connection, and how long that took.
func readAllUntilClose(t *testing.T, c net.Conn) (string, time.Duration) {
	t.Helper()
	t0 := time.Now()
	b, err := io.ReadAll(c)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("server did not close the connection; got %q so far", b)
		}
	}
	return string(b), time.Since(t0)
}

func TestReadHeaderTimeoutSlowloris(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	addr := startTimedServer(t, timeout)

	// Headers trickled a byte at a time: 408 and the connection closed,
	// about one timeout after the first byte.
	start := time.Now() // before the dial: the server's clock starts at accept
	c, _ := rawConn(t, addr)
	stop := make(chan struct{})
	go func() {
		msg := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)
		for i := range len(msg) {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := c.Write([]byte{msg[i]}); err != nil {
				return
			}
		}
	}()
	got, _ := readAllUntilClose(t, c)
	close(stop)
	took := time.Since(start)
	if !strings.HasPrefix(got, "HTTP/1.1 408 ") {
		t.Errorf("slowloris got %q; want a 408 Request Timeout", got)
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Errorf("slowloris cut off after %v; want about %v", took, timeout)
	}

	// A connection that never sends anything is closed, silently. (The
	// time is measured from after the dial, a little after the server's
	// clock started: hence the margin below the timeout.)
	c2, _ := rawConn(t, addr)
	got, took = readAllUntilClose(t, c2)
	if got != "" || took < timeout-50*time.Millisecond || took > timeout+2*time.Second {
		t.Errorf("silent connection: got %q after %v; want nothing, closed after about %v", got, took, timeout)
	}
}

// Waiting between requests on a kept-alive connection is idle time, not
// a slow head: a request after a pause longer than the timeout works.
func TestReadHeaderTimeoutKeepAliveIdle(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	addr := startTimedServer(t, timeout)
	c, br := rawConn(t, addr)
	for i := range 2 {
		if i > 0 {
			time.Sleep(2 * timeout)
		}
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Errorf("request %d: %d %q; want 200 ok", i, resp.StatusCode, b)
		}
	}
	// A head split over two writes within the timeout is fine too.
	io.WriteString(c, "GET / HTTP/1.1\r\nHo")
	time.Sleep(timeout / 4)
	io.WriteString(c, "st: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(br), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("split head: %v %v", resp, err)
	}
	resp.Body.Close()
}

// Headers larger than the fast path's buffer go to net/http, whose
// MaxHeaderBytes answers 431.
func TestOversizedHeaders(t *testing.T) {
	t.Parallel()
	addr := startTimedServer(t, time.Second)
	for _, tc := range []struct {
		size int
		want int
	}{{6 << 10, 200}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		c, br := rawConn(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("b", tc.size)+"\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%d-byte header: %v", tc.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d-byte header: status %d; want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
}
