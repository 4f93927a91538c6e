// Package observability checks the router's telemetry end to end: the
// real linnet binary runs the walkthrough's topology (hello → outgoing →
// incoming → world, internal/demo), and its spans, metrics and dashboard
// are read by real peers: a Zipkin v2 collector, promtool and headless
// Chromium.
package observability

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/demo"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

var update = flag.Bool("update", false, "rewrite the golden files and docs/dashboard.png")

// walkthrough is the demo topology: hello, world-v1, world-v2 and a
// broken service (always 500) named by an io.l5d.fs directory, and the
// real binary running the walkthrough's outgoing and incoming routers.
type walkthrough struct {
	demo.Layout
	admin  string            // admin base URL
	apps   map[string]string // app name → "127.0.0.1:port"
	stderr *linnettest.Buffer
}

// startWalkthrough starts the apps and `linnet router` with the demo's
// configuration; telemetry is added to its telemetry list.
//
// Ports are picked free and released before linnet binds them, so a
// parallel test may take one in between: that start is retried.
func startWalkthrough(t *testing.T, telemetry string) *walkthrough {
	t.Helper()
	for attempt := 1; ; attempt++ {
		w, stderr := tryWalkthrough(t, telemetry)
		if w != nil {
			return w
		}
		if !strings.Contains(stderr, "address already in use") || attempt == 3 {
			t.Fatalf("linnet exited before serving:\n%s", stderr)
		}
	}
}

// tryWalkthrough starts the walkthrough once; when linnet exits before
// serving it returns nil and linnet's output.
func tryWalkthrough(t *testing.T, telemetry string) (*walkthrough, string) {
	t.Helper()
	w := &walkthrough{Layout: demo.Layout{
		Outgoing: linnettest.FreePort(t), Incoming: linnettest.FreePort(t), Admin: linnettest.FreePort(t), RootDir: t.TempDir(),
	}, apps: map[string]string{}}
	hello, err := demo.Hello("world", fmt.Sprintf("http://127.0.0.1:%d", w.Outgoing))
	if err != nil {
		t.Fatal(err)
	}
	broken := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Error(rw, "broken on purpose", http.StatusInternalServerError)
	})
	for _, a := range []struct {
		name string
		h    http.Handler
	}{{"hello", hello}, {"world-v1", demo.World("world")}, {"world-v2", demo.World("earth")}, {"broken", broken}} {
		app, err := demo.Start(a.name, "127.0.0.1:0", a.h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = app.Close(ctx)
		})
		w.apps[a.name] = app.Addr
		if err := w.Register(a.name, app.Addr); err != nil {
			t.Fatal(err)
		}
	}
	cfg := w.Config()
	if telemetry != "" {
		cfg = strings.Replace(cfg, "telemetry:\n", "telemetry:\n"+telemetry, 1)
	}
	w.admin = fmt.Sprintf("http://127.0.0.1:%d", w.Admin)
	w.stderr = &linnettest.Buffer{}
	cmd := exec.Command(linnettest.Bin(t), "router", "-")
	cmd.Stdin = strings.NewReader(cfg)
	cmd.Stdout, cmd.Stderr = w.stderr, w.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("linnet did not stop on SIGTERM within 15s\n%s", w.stderr)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(w.admin + "/admin/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return w, ""
			}
		}
		select {
		case <-exited:
			return nil, w.stderr.String()
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("linnet admin did not answer: %v\n%s", err, w.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get sends GET / to the incoming router with Host host and extra
// headers, and returns the status and body.
func (w *walkthrough) get(t *testing.T, host string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", w.Incoming), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET Host %s: %v", host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// adminGet returns the body of an admin page.
func (w *walkthrough) adminGet(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(w.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, b)
	}
	return string(b)
}

// metrics returns /admin/metrics.json.
func (w *walkthrough) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	if err := json.Unmarshal([]byte(w.adminGet(t, "/admin/metrics.json")), &m); err != nil {
		t.Fatalf("metrics.json: %v", err)
	}
	return m
}

const helloWorld = "Hello (127.0.0.1) world (127.0.0.1)!!"
