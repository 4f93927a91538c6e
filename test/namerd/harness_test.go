// Package namerd runs the real linnet binary as namerd (and as the
// namerctl-compatible CLI, and as a router following namerd) with real
// peers (etcd) on loopback.
package namerd

import (
	"bytes"
	"fmt"
	"io"
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

// linnetBin returns the binary under test: $LINNET_BIN (make test sets it),
// else a fresh `go build` into a temporary directory.
func linnetBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("LINNET_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "linnet-namerd-")
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

// proc is one running linnet process (namerd or router).
type proc struct {
	t      *testing.T
	name   string
	args   []string
	config string
	ping   string // admin ping URL
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// start runs `linnet <role> -` with config on stdin and waits until its
// admin server answers /admin/ping.
func start(t *testing.T, role, config string, adminPort int) *proc {
	t.Helper()
	p := &proc{t: t, name: role, args: []string{role, "-"}, config: config, ping: fmt.Sprintf("http://127.0.0.1:%d/admin/ping", adminPort)}
	p.run()
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	return p
}

func (p *proc) run() {
	p.t.Helper()
	p.cmd = exec.Command(linnetBin(p.t), p.args...)
	p.cmd.Stdin = strings.NewReader(p.config)
	p.out = &syncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.exited = make(chan struct{})
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := p.exited
	cmd := p.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(p.ping)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-exited:
			p.t.Fatalf("%s exited before serving: %v\n%s", p.name, cmd.ProcessState, p.out)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s admin did not answer: %v\n%s", p.name, err, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop signals the process (by PID) and waits for it.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// restart stops the process with sig and starts it again with the same
// configuration.
func (p *proc) restart(sig syscall.Signal) {
	p.t.Helper()
	p.stop(sig)
	p.run()
}

// cli runs `linnet dtab ...` against namerd at base.
type cliResult struct {
	code int
	out  string
}

func dtabCLI(t *testing.T, base, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(linnetBin(t), append([]string{"dtab"}, args...)...)
	cmd.Env = append(os.Environ(), "NAMERCTL_BASE_URL="+base)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = io.Discard
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{code, out.String()}
}

func (r cliResult) want(t *testing.T, code int, out string) {
	t.Helper()
	if r.code != code || r.out != out {
		t.Fatalf("linnet dtab: exit %d, stdout %q; want exit %d, stdout %q", r.code, r.out, code, out)
	}
}
