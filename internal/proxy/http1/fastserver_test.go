package http1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServer serves h with the fast-path server on a loopback port.
func startServer(t *testing.T, h http.Handler) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, &http.Server{}, nil)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s, ln.Addr().String()
}

func rawConn(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func TestFastServerFraming(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/len":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
			w.Header().Set("X-Sum", "2")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/body":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s via %s", b, r.Proto)
		case "/split":
			w.Header().Set("X-Evil", "a\r\nSet-Cookie: x=1")
		}
	}))
	c, br := rawConn(t, addr)
	// Pipelined: three requests in one write.
	io.WriteString(c, "GET /len HTTP/1.1\r\nHost: x\r\n\r\nHEAD /len HTTP/1.1\r\nHost: x\r\n\r\nGET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
	for i, want := range []struct {
		code  int
		body  string
		chunk bool
	}{{200, "hello", false}, {200, "", false}, {200, "ab", true}} {
		req, _ := http.NewRequest([]string{"GET", "HEAD", "GET"}[i], "/", nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want.code || string(b) != want.body || (len(resp.TransferEncoding) > 0) != want.chunk {
			t.Errorf("response %d: %d %q %v", i, resp.StatusCode, b, resp.TransferEncoding)
		}
		if resp.Header.Get("Date") == "" {
			t.Errorf("response %d has no Date", i)
		}
		if i == 1 && resp.ContentLength != 5 {
			t.Errorf("HEAD Content-Length = %d; want 5", resp.ContentLength)
		}
		if i == 2 && resp.Trailer.Get("X-Sum") != "2" {
			t.Errorf("trailer = %v", resp.Trailer)
		}
	}
	// A request with a body goes to net/http on the same connection.
	io.WriteString(c, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "abc via HTTP/1.1" {
		t.Errorf("handed-off request: %q", b)
	}
	// Header values cannot split the response.
	c2, br2 := rawConn(t, addr)
	io.WriteString(c2, "GET /split HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	raw, _ := io.ReadAll(br2)
	if strings.Contains(string(raw), "\r\nSet-Cookie") || !strings.Contains(string(raw), "Connection: close") {
		t.Errorf("response = %q; want the value on one line and Connection: close", raw)
	}
	// HTTP/1.0 and oversized heads are handed off too.
	c3, br3 := rawConn(t, addr)
	io.WriteString(c3, "GET /body HTTP/1.0\r\nX-Big: "+strings.Repeat("x", 6000)+"\r\n\r\n")
	resp, err = http.ReadResponse(br3, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	if string(b) != " via HTTP/1.0" {
		t.Errorf("HTTP/1.0 request: %q", b)
	}
	c4, br4 := rawConn(t, addr)
	io.WriteString(c4, "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br4, nil)
	if err != nil || resp.StatusCode != 204 || resp.ContentLength != 0 {
		t.Errorf("204: %v %v", resp, err)
	}
}

func TestFastServerShutdownClosesIdle(t *testing.T) {
	t.Parallel()
	s, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	c, br := rawConn(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("idle keep-alive connection still open after Shutdown")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("listener still accepting after Shutdown")
	}
}
