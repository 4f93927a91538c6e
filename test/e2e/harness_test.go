// Package e2e runs the real linnet binary from configuration text and
// drives it with real HTTP clients on loopback.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// linnetBin returns the binary under test: $LINNET_BIN (make test sets it
// to bin/linnet), else a fresh `go build` into a temporary directory.
func linnetBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("LINNET_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "linnet-e2e-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "linnet")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/linnet-mesh/linnet/cmd/linnet")
		cmd.Stderr = os.Stderr
		binErr = cmd.Run()
	})
	if binErr != nil {
		t.Fatalf("building linnet: %v", binErr)
	}
	return binPath
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// linnet is one running `linnet router` process.
type linnet struct {
	t      *testing.T
	cmd    *exec.Cmd
	admin  string
	stderr *syncBuffer
	exited chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRouter runs `linnet router -` with config on stdin; adminPort must
// be the config's admin port. It waits until /admin/ping answers.
func startRouter(t *testing.T, config string, adminPort int, args ...string) *linnet {
	t.Helper()
	cmd := exec.Command(linnetBin(t), append(append([]string{"router"}, args...), "-")...)
	cmd.Stdin = strings.NewReader(config)
	l := &linnet{t: t, cmd: cmd, admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = l.stderr
	cmd.Stdout = l.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(l.exited)
	}()
	t.Cleanup(l.stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(l.admin + "/admin/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return l
			}
		}
		select {
		case <-l.exited:
			t.Fatalf("linnet exited before serving: %v\n%s", cmd.ProcessState, l.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("linnet admin did not answer: %v\n%s", err, l.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *linnet) stop() {
	select {
	case <-l.exited:
		return
	default:
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.exited:
	case <-time.After(15 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.exited
		l.t.Errorf("linnet did not stop on SIGTERM within 15s\n%s", l.stderr)
	}
}

// procStatus reads a field (in kB) of /proc/<pid>/status, e.g. VmHWM.
func (l *linnet) procStatus(field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", l.cmd.Process.Pid))
	if err != nil {
		l.t.Error(err)
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	l.t.Errorf("no %s in /proc/%d/status", field, l.cmd.Process.Pid)
	return 0
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
