// Package linnettest runs the real linnet binary in whole-binary tests:
// it finds or builds the binary once per test process, starts a role
// (router, namerd, demo...) from configuration text on stdin, waits until
// its admin server answers, and stops it by PID when the test ends.
package linnettest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
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

	"github.com/linnet-mesh/linnet/internal/testutil/freeport"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Bin returns the binary under test: $LINNET_BIN (`make test` sets it to
// bin/linnet), else a fresh `go build` into a temporary directory, made
// once per test process.
func Bin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("LINNET_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "linnet-bin-")
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

// FreePort returns a loopback TCP port that was free a moment ago, for a
// process the test starts to listen on (internal/testutil/freeport says
// how it is chosen).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Buffer is a goroutine-safe bytes.Buffer for a process's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Options says how to start a process.
type Options struct {
	// Args are the arguments after the binary, e.g. {"router", "-"}.
	Args []string
	// Stdin is fed to the process (the config when Args ends with "-").
	Stdin string
	// Ready is polled (GET, expecting 200) until it answers; empty means
	// do not wait.
	Ready string
	// Env is added to the test process's environment.
	Env []string
	// StopTimeout bounds the wait after SIGTERM at cleanup (default 15s).
	StopTimeout time.Duration
}

// Proc is one running linnet process.
type Proc struct {
	t      testing.TB
	opts   Options
	cmd    *exec.Cmd
	out    *Buffer
	exited chan struct{}
}

// Start runs the binary with opts and waits for it to be ready. The
// process is stopped (SIGTERM, then SIGKILL) when the test ends.
func Start(t testing.TB, opts Options) *Proc {
	t.Helper()
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 15 * time.Second
	}
	p := &Proc{t: t, opts: opts, out: &Buffer{}}
	p.run()
	t.Cleanup(func() { p.Stop(syscall.SIGTERM) })
	return p
}

// StartRouter runs `linnet router -` with config on stdin and waits for
// its admin server on adminPort.
func StartRouter(t testing.TB, config string, adminPort int, args ...string) *Proc {
	t.Helper()
	return Start(t, Options{
		Args:  append(append([]string{"router"}, args...), "-"),
		Stdin: config,
		Ready: fmt.Sprintf("http://127.0.0.1:%d/admin/ping", adminPort),
	})
}

// StartNamerd runs `linnet namerd -` with config on stdin and waits for
// its admin server on adminPort.
func StartNamerd(t testing.TB, config string, adminPort int) *Proc {
	t.Helper()
	return Start(t, Options{
		Args:  []string{"namerd", "-"},
		Stdin: config,
		Ready: fmt.Sprintf("http://127.0.0.1:%d/admin/ping", adminPort),
	})
}

func (p *Proc) run() {
	p.t.Helper()
	cmd := exec.Command(Bin(p.t), p.opts.Args...)
	cmd.Stdin = strings.NewReader(p.opts.Stdin)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.Env = append(os.Environ(), p.opts.Env...)
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("starting linnet %v: %v", p.opts.Args, err)
	}
	p.cmd = cmd
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if p.opts.Ready == "" {
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.opts.Ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			p.t.Fatalf("linnet %v exited before serving: %v\n%s", p.opts.Args, cmd.ProcessState, p.out)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("linnet %v: %s did not answer within 20s: %v\n%s", p.opts.Args, p.opts.Ready, err, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// ExitState returns how the process exited; nil while it runs.
func (p *Proc) ExitState() *os.ProcessState {
	select {
	case <-p.exited:
		return p.cmd.ProcessState
	default:
		return nil
	}
}

// Output returns the process's stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// Signal sends sig and waits up to within for the process to exit. It
// returns how long the exit took and whether it happened in time.
func (p *Proc) Signal(sig syscall.Signal, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return time.Since(start), true
	case <-time.After(within):
		return time.Since(start), false
	}
}

// Stop ends the process with sig (SIGKILL after StopTimeout) unless it
// has already exited. A process that ignores SIGTERM fails the test.
func (p *Proc) Stop(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	if _, ok := p.Signal(sig, p.opts.StopTimeout); !ok {
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("linnet %v did not stop on %v within %v\n%s", p.opts.Args, sig, p.opts.StopTimeout, p.out)
	}
}

// Restart stops the process with sig and starts it again with the same
// options (same ports, same stdin).
func (p *Proc) Restart(sig syscall.Signal) {
	p.t.Helper()
	p.Stop(sig)
	p.run()
}

// Rerun starts the process again with the same options after it has
// exited (after Stop, or on its own), so a test can observe the gap in
// between. Use Restart to stop and start in one step.
func (p *Proc) Rerun() {
	p.t.Helper()
	select {
	case <-p.exited:
	default:
		p.t.Fatalf("linnet %v: Rerun while it is still running", p.opts.Args)
	}
	p.run()
}

// ProcStatus reads a field in kB of /proc/<pid>/status, e.g. "VmHWM".
func (p *Proc) ProcStatus(field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		p.t.Error(err)
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
	p.t.Errorf("no %s in /proc/%d/status", field, p.PID())
	return 0
}

// Metrics fetches a flat metrics.json document (name → value) from an
// admin base URL such as http://127.0.0.1:9990.
func Metrics(t testing.TB, adminBase string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(adminBase + "/admin/metrics.json")
	if err != nil {
		t.Fatalf("metrics.json: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics.json: status %d", resp.StatusCode)
	}
	m := map[string]float64{}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("metrics.json: %v", err)
	}
	return m
}

// WaitFor polls cond every 10ms until it holds or within passes.
func WaitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
