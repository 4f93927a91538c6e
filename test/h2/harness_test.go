// Package h2 runs the real linnet binary with `protocol: h2` routers and
// drives them with real gRPC and HTTP/2 clients on loopback.
package h2

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
		dir, err := os.MkdirTemp("", "linnet-h2-")
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

// startRouter runs `linnet router -` with config on stdin, waits until
// its admin server (on adminPort) answers, and stops it by PID (SIGTERM)
// when the test ends.
func startRouter(t *testing.T, config string, adminPort int) {
	t.Helper()
	cmd := exec.Command(linnetBin(t), "router", "-")
	cmd.Stdin = strings.NewReader(config)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("linnet did not stop on SIGTERM within 15s\n%s", out)
		}
	})
	admin := fmt.Sprintf("http://127.0.0.1:%d/admin/ping", adminPort)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(admin)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("linnet exited before serving: %v\n%s", cmd.ProcessState, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("linnet admin did not answer: %v\n%s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
