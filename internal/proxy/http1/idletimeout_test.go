package http1

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A kept-alive connection idle longer than IdleTimeout is closed; one in
// use is not, however long it lives.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), &http.Server{IdleTimeout: idle}, nil)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	addr := ln.Addr().String()

	// In use: a request every idle/4 for 3×idle, all on one connection.
	busy, bbr := rawConn(t, addr)
	for start := time.Now(); time.Since(start) < 3*idle; time.Sleep(idle / 4) {
		io.WriteString(busy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bbr, nil)
		if err != nil {
			t.Fatalf("busy connection closed after %v: %v", time.Since(start), err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// Idle after one request: closed after about the timeout.
	c, br := rawConn(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	t0 := time.Now()
	n, err := br.Read(make([]byte, 1))
	took := time.Since(t0)
	if n != 0 || err != io.EOF {
		t.Fatalf("idle connection: read %d bytes, %v; want EOF", n, err)
	}
	// (t0 is taken after the response was read, a little after the
	// server went idle: hence the margin below the timeout.)
	if took < idle-50*time.Millisecond || took > idle+time.Second {
		t.Errorf("idle connection closed after %v; want about %v", took, idle)
	}
}
