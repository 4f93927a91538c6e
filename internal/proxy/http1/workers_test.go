package http1

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// goroutineID is the number runtime.Stack prints for the calling
// goroutine ("goroutine 42 [running]:").
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	if len(f) < 2 {
		return ""
	}
	return string(f[1])
}

// Connections opened one after another are served by the same goroutine
// (with the stack it has grown), and Close ends the idle workers.
func TestWorkersServeSuccessiveConnections(t *testing.T) {
	before := runtime.NumGoroutine()
	s, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, goroutineID())
	}))
	seen := map[string]int{}
	for range 20 {
		c, br := rawConn(t, addr)
		io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		// Wait for the server to close its side (HTTP/1.0): its worker is
		// then about to wait for the next connection.
		br.Peek(1)
		c.Close()
		seen[string(b)]++
	}
	// Without reuse there would be 20; allow for a worker that had not
	// reached its wait when the next connection came.
	if len(seen) >= 10 {
		t.Errorf("20 successive connections ran on %d goroutines (%v); want workers reused", len(seen), seen)
	}
	s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		if strings.Contains(string(buf), "(*Server).worker") {
			t.Errorf("a worker outlived Close (%d goroutines, %d before):\n%s", n, before, buf)
		}
	}
}
