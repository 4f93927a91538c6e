// Package dnsmasqtest runs a real dnsmasq (Debian package dnsmasq-base,
// installed by scripts/test-deps.sh) as a DNS server for tests: on a free
// loopback port, authoritative for the test's domain only, with records
// given as dnsmasq flags and an address file that can be rewritten.
package dnsmasqtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Domain is the domain the server answers for: names below it that it has
// no records for are NXDOMAIN; names outside it are refused.
const Domain = "l5d.test"

// Server is one dnsmasq process.
type Server struct {
	t     testing.TB
	Port  int
	hosts string // the --addn-hosts file

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	records []string
	out     *buffer
}

// Binary finds dnsmasq, failing the test when it is missing.
func Binary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"dnsmasq", "/usr/sbin/dnsmasq", "/sbin/dnsmasq"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("dnsmasq not found: install the dnsmasq-base package (scripts/test-deps.sh)")
	return ""
}

// Start runs dnsmasq with records, e.g.
// "--srv-host=_http._tcp.web.l5d.test,web.l5d.test,8080,0,10" and
// "--host-record=web.l5d.test,127.0.0.1", and waits until it answers. It
// is stopped by PID when the test ends.
func Start(t testing.TB, records ...string) *Server {
	t.Helper()
	s := &Server{t: t, hosts: filepath.Join(t.TempDir(), "hosts")}
	if err := os.WriteFile(s.hosts, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	var err error
	for range 5 { // another process may take the port between probe and bind
		s.Port = freePort(t)
		if err = s.start(records); err == nil {
			return s
		}
	}
	t.Fatalf("starting dnsmasq: %v", err)
	return nil
}

// Addr is "127.0.0.1:<port>", for dnsHosts.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Restart stops dnsmasq and starts it again on the same port with new
// records (dnsmasq re-reads address files on SIGHUP, not its flags).
func (s *Server) Restart(records ...string) {
	s.t.Helper()
	s.Stop()
	var err error
	for range 20 {
		if err = s.start(records); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("restarting dnsmasq on port %d: %v", s.Port, err)
}

// SetHosts rewrites the address file (hosts-file format: "ip name...")
// and makes dnsmasq re-read it (SIGHUP).
func (s *Server) SetHosts(content string) {
	s.t.Helper()
	if err := os.WriteFile(s.hosts, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatal("SetHosts: dnsmasq is not running")
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		s.t.Fatal(err)
	}
}

// Stop stops dnsmasq (SIGTERM, then SIGKILL) and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (s *Server) start(records []string) error {
	args := []string{
		"--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
		"--no-resolv", "--no-hosts", "--no-poll", "--log-facility=-",
		"--port=" + strconv.Itoa(s.Port), "--listen-address=127.0.0.1", "--bind-interfaces",
		"--local=/" + Domain + "/", "--addn-hosts=" + s.hosts,
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root") // keep access to the test's 0700 temp dir
	}
	args = append(args, records...)
	out := &buffer{}
	cmd := exec.Command(Binary(s.t), args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Ready when it answers a query for a name it serves (NXDOMAIN counts).
	r := Resolver(s.Addr())
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("dnsmasq exited: %v\n%s", cmd.ProcessState, out)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := r.LookupNetIP(ctx, "ip4", "probe."+Domain+".")
		cancel()
		if de, ok := err.(*net.DNSError); err == nil || ok && de.IsNotFound {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("dnsmasq did not answer within 5s: %v\n%s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.exited, s.records, s.out = cmd, exited, records, out
	s.mu.Unlock()
	return nil
}

// Output returns what the running dnsmasq has logged.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// Resolver returns a Go resolver that asks only the server at addr.
func Resolver(addr string) *net.Resolver {
	var d net.Dialer
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
}

// freePort returns a loopback port free for both UDP and TCP a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free loopback port for UDP and TCP")
	return 0
}

type buffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}
