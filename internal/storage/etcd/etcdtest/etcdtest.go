// Package etcdtest runs a real etcd server for tests: the Debian
// etcd-server binary (installed by scripts/test-deps.sh), on free loopback
// ports, with its data in a temporary directory. Servers are stopped by PID
// when the test ends.
package etcdtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/freeport"
)

// Server is one etcd process (restartable on the same ports and data).
type Server struct {
	t          testing.TB
	bin        string
	dir        string
	clientPort int
	peerPort   int

	tls *TLS

	mu  sync.Mutex
	cmd *exec.Cmd
	log *bytes.Buffer
}

// TLS makes etcd serve clients over TLS with this certificate; with
// ClientCAPath set it also requires client certificates signed by that CA.
type TLS struct {
	CertPath, KeyPath string
	// CAPath verifies etcd's certificate in the health check.
	CAPath string
	// ClientCAPath, when set, turns on client certificate authentication.
	ClientCAPath string
	// ClientCertPath and ClientKeyPath are what the health check presents
	// when client certificates are required.
	ClientCertPath, ClientKeyPath string
}

// Binary returns the etcd binary: $LINNET_ETCD, or etcd on PATH.
func Binary() (string, error) {
	if b := os.Getenv("LINNET_ETCD"); b != "" {
		return b, nil
	}
	b, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("etcd not found (install Debian's etcd-server: scripts/test-deps.sh): %w", err)
	}
	return b, nil
}

// Start starts etcd and waits until it serves requests.
func Start(t testing.TB) *Server { return StartTLS(t, nil) }

// StartTLS is Start with TLS for clients (nil: plain HTTP).
func StartTLS(t testing.TB, tc *TLS) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), clientPort: freePort(t), peerPort: freePort(t), tls: tc}
	t.Cleanup(s.Stop)
	s.Restart()
	return s
}

// Endpoint returns the client endpoint, host:port.
func (s *Server) Endpoint() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.clientPort)) }

// Restart starts etcd again after Stop or Kill (same ports, same data) and
// waits until it is healthy. Calling it on a running server restarts it.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	scheme := "http://"
	hc := http.DefaultClient
	var extra []string
	if tc := s.tls; tc != nil {
		scheme = "https://"
		extra = append(extra, "--cert-file", tc.CertPath, "--key-file", tc.KeyPath)
		if tc.ClientCAPath != "" {
			extra = append(extra, "--client-cert-auth", "--trusted-ca-file", tc.ClientCAPath)
		}
		hc = s.healthClient()
	}
	client := scheme + s.Endpoint()
	peer := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.peerPort))
	cmd := exec.Command(s.bin, append([]string{
		"--name", "linnet-test",
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "linnet-test=" + peer,
		"--log-level", "warn",
	}, extra...)...)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting etcd: %v", err)
	}
	s.mu.Lock()
	s.cmd, s.log = cmd, log
	s.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, client+"/health", nil)
		resp, err := hc.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	s.t.Fatalf("etcd did not become healthy within 20s; its output:\n%s", log.String())
}

// Stop terminates etcd (SIGTERM, then SIGKILL after 5s) and waits for it.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills etcd with SIGKILL, as a crash would.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// healthClient trusts the test CA and presents the client certificate.
func (s *Server) healthClient() *http.Client {
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(s.tls.CAPath)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		s.t.Fatalf("etcdtest: CA %s: %v", s.tls.CAPath, err)
	}
	cfg := &tls.Config{RootCAs: pool}
	if s.tls.ClientCertPath != "" {
		cert, err := tls.LoadX509KeyPair(s.tls.ClientCertPath, s.tls.ClientKeyPath)
		if err != nil {
			s.t.Fatalf("etcdtest: client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
