// Package e2e runs the real linnet binary from configuration text and
// drives it with real HTTP clients on loopback.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// syncBuffer is a goroutine-safe buffer for a process's output.
type syncBuffer = linnettest.Buffer

// linnetBin returns the binary under test (see linnettest.Bin).
func linnetBin(t *testing.T) string { return linnettest.Bin(t) }

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int { return linnettest.FreePort(t) }

// linnet is one running `linnet router` process and its admin base URL.
type linnet struct {
	*linnettest.Proc
	admin string // http://127.0.0.1:<admin port>
}

// startRouter runs `linnet router -` with config on stdin; adminPort must
// be the config's admin port. It waits until /admin/ping answers, and
// stops the process by PID (SIGTERM) when the test ends.
func startRouter(t *testing.T, config string, adminPort int, args ...string) *linnet {
	t.Helper()
	return &linnet{
		Proc:  linnettest.StartRouter(t, config, adminPort, args...),
		admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
	}
}

// metrics reads the router's /admin/metrics.json.
func metrics(t *testing.T, l *linnet) map[string]float64 {
	t.Helper()
	return linnettest.Metrics(t, l.admin)
}

// backend is a loopback HTTP server.
func backend(t *testing.T, h http.Handler) (url string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	port = ln.Addr().(*net.TCPAddr).Port
	return fmt.Sprintf("http://127.0.0.1:%d", port), port
}

// text is a handler answering a fixed body.
func text(s string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s) })
}

// send does a request with an explicit Host header and returns status,
// headers and body.
func send(t *testing.T, method, url, host string, hdr map[string]string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, url, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}
