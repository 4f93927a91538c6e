// Package zktest runs a real ZooKeeper server for tests: Debian's
// zookeeper package (installed by scripts/test-deps.sh; its jars are in
// /usr/share/java and java is on PATH), standalone, on a free loopback
// port, with its data in a temporary directory. The server is stopped by
// PID when the test ends, and can be stopped and restarted on the same
// port and data mid-test.
package zktest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
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
	"github.com/linnet-mesh/linnet/internal/zk"
)

// JarDir is where Debian installs ZooKeeper's jars ($LINNET_ZK_JARS
// overrides it).
const JarDir = "/usr/share/java"

// classpath returns the server's classpath: zookeeper.jar (its manifest
// names its dependencies) and a no-op SLF4J binding, so that the server
// logs nothing.
func classpath() (string, error) {
	dir := os.Getenv("LINNET_ZK_JARS")
	if dir == "" {
		dir = JarDir
	}
	jar := filepath.Join(dir, "zookeeper.jar")
	if _, err := os.Stat(jar); err != nil {
		return "", fmt.Errorf("ZooKeeper not installed (%s missing; install Debian's zookeeper: scripts/test-deps.sh): %w", jar, err)
	}
	cp := []string{jar}
	if nop := filepath.Join(dir, "slf4j-nop.jar"); fileExists(nop) {
		cp = append(cp, nop)
	}
	return strings.Join(cp, string(os.PathListSeparator)), nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Server is one ZooKeeper process.
type Server struct {
	t    testing.TB
	java string
	cp   string
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
	log *bytes.Buffer
}

// Start starts ZooKeeper and waits until it serves requests.
func Start(t testing.TB) *Server {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java not found (install Debian's zookeeper, which brings a JRE: scripts/test-deps.sh): %v", err)
	}
	cp, err := classpath()
	if err != nil {
		t.Fatal(err)
	}
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, java: java, cp: cp, dir: t.TempDir(), port: port}
	cfg := fmt.Sprintf(`tickTime=200
minSessionTimeout=400
maxSessionTimeout=60000
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok
`, filepath.Join(s.dir, "data"), port)
	if err := os.WriteFile(filepath.Join(s.dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	s.Restart()
	return s
}

// Addr returns the client address, 127.0.0.1:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// HostPort returns the address as a zkAddrs entry.
func (s *Server) HostPort() zk.HostPort { return zk.HostPort{Host: "127.0.0.1", Port: zk.Port(s.port)} }

// Restart starts ZooKeeper again after Stop (same port, same data) and
// waits until it serves; on a running server it stops it first.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	cmd := exec.Command(s.java,
		"-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
		"-Dzookeeper.admin.enableServer=false",
		"-cp", s.cp,
		"org.apache.zookeeper.server.ZooKeeperServerMain",
		filepath.Join(s.dir, "zoo.cfg"))
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting ZooKeeper: %v", err)
	}
	s.mu.Lock()
	s.cmd, s.log = cmd, log
	s.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if serving(s.Addr()) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	s.t.Fatalf("ZooKeeper did not serve on %s within 30s; its output:\n%s", s.Addr(), log.String())
}

// RestartEmpty restarts ZooKeeper on the same port with its data wiped,
// as if the ensemble had been replaced: clients find their sessions
// expired and the tree empty.
func (s *Server) RestartEmpty() {
	s.t.Helper()
	s.Stop()
	if err := os.RemoveAll(filepath.Join(s.dir, "data")); err != nil {
		s.t.Fatal(err)
	}
	s.Restart()
}

// serving asks the four-letter command srvr: a standalone server that
// serves requests answers with its "Mode:".
func serving(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	b, _ := io.ReadAll(c)
	return bytes.Contains(b, []byte("Mode: standalone"))
}

// Stop terminates ZooKeeper (SIGTERM, then SIGKILL after 5s) and waits for
// it. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *zk.Client {
	t.Helper()
	c, err := zk.Dial(zk.Options{Servers: []string{s.Addr()}, SessionTimeout: 4 * time.Second, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}
