// Package k8stest runs a real kube-apiserver (v1.37.2, built by
// scripts/k8s-apiserver.sh) over Debian's etcd on loopback for tests.
//
// The binaries are looked up in $LINNET_K8S_BIN, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/linnet/k8s/v1.37.2. `make test` starts
// their build in the background at the beginning (it takes minutes cold),
// so Start waits for kube-apiserver to appear, up to $LINNET_K8S_WAIT
// (a Go duration, default 11m) or until the build log reports a failure.
// A missing binary with no build in progress fails the test with the
// command to run; it is never a silent skip.
//
// One server is shared by all tests of a package: call Main from TestMain.
// It lives in temporary folders and is stopped (by PID) when Main returns.
package k8stest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/k8s"
	"github.com/linnet-mesh/linnet/internal/testutil/freeport"
	"github.com/linnet-mesh/linnet/internal/testutil/peerbuild"
)

// Version is the Kubernetes release the tests run against.
const Version = "v1.37.2"

// Token is the bearer token of the test API server's admin user
// (group system:masters).
const Token = "linnet-test-token"

// Server is a running etcd + kube-apiserver pair.
type Server struct {
	// Port is kube-apiserver's HTTPS port on 127.0.0.1.
	Port int
	// Dir holds the certificates, keys, logs and Kubeconfig.
	Dir string
	// Kubeconfig is the path of a kubeconfig for the admin user.
	Kubeconfig string
	// BinDir holds kube-apiserver and kubectl.
	BinDir string

	etcd, apiserver *exec.Cmd
	apiDone         chan error // kube-apiserver's Wait result
	proxyOnce       sync.Once
	proxy           *http.Server
	proxyPort       int
	proxyErr        error
	kubectlOnce     sync.Once
	kubectlErr      error
	reqMu           sync.Mutex
	requests        []string
}

// ProxyRequests returns the request URIs the kubectl-proxy stand-in has
// forwarded that contain substr, in order.
func (s *Server) ProxyRequests(substr string) []string {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	var out []string
	for _, r := range s.requests {
		if strings.Contains(r, substr) {
			out = append(out, r)
		}
	}
	return out
}

var (
	shared    *Server
	sharedErr error
	sharedMu  sync.Mutex
)

// Main runs the package's tests and then stops the shared server, if one was
// started. Use it as `func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }`.
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
	}
	return code
}

// Shared returns the package's API server, starting it on first use. Any
// failure to start fails t.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = start()
	}
	if sharedErr != nil {
		t.Fatalf("k8stest: %v", sharedErr)
	}
	return shared
}

// Conn returns how to reach the server directly (HTTPS with the admin
// token).
func (s *Server) Conn() k8s.Conn {
	return k8s.Conn{Host: "127.0.0.1", Port: s.Port, Scheme: "https", Token: Token, TLSInsecure: true}
}

// ProxyConn returns a plain-HTTP Conn to a stand-in for `kubectl proxy`:
// a reverse proxy on 127.0.0.1 that adds the admin token, which is how
// Linkerd's default host/port mode reaches the API.
func (s *Server) ProxyConn(t testing.TB) k8s.Conn {
	t.Helper()
	s.proxyOnce.Do(func() {
		target, _ := url.Parse("https://127.0.0.1:" + strconv.Itoa(s.Port))
		rp := &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				s.reqMu.Lock()
				s.requests = append(s.requests, r.In.URL.RequestURI())
				s.reqMu.Unlock()
				r.SetURL(target)
				r.Out.Header.Set("Authorization", "Bearer "+Token)
			},
			// Watches stream: flush every write.
			FlushInterval: -1,
			Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // test server, self-signed
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.proxyErr = err
			return
		}
		s.proxyPort = ln.Addr().(*net.TCPAddr).Port
		s.proxy = &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = s.proxy.Serve(ln) }()
	})
	if s.proxyErr != nil {
		t.Fatalf("k8stest: proxy: %v", s.proxyErr)
	}
	return k8s.Conn{Host: "127.0.0.1", Port: s.proxyPort}
}

// Kubectl runs the built kubectl against the server with args and returns
// its combined output.
// It waits for kubectl to be built first, if needed.
func (s *Server) Kubectl(ctx context.Context, stdin []byte, args ...string) (string, error) {
	s.kubectlOnce.Do(func() { s.kubectlErr = waitBinaries(s.BinDir, "kubectl") })
	if s.kubectlErr != nil {
		return "", s.kubectlErr
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, "kubectl"), append([]string{"--kubeconfig", s.Kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Stop kills kube-apiserver and etcd and removes the temporary folder.
func (s *Server) Stop() {
	if s.proxy != nil {
		_ = s.proxy.Close()
	}
	if s.apiserver != nil && s.apiserver.Process != nil {
		_ = s.apiserver.Process.Kill()
		<-s.apiDone
	}
	if s.etcd != nil && s.etcd.Process != nil {
		_ = s.etcd.Process.Kill()
		_ = s.etcd.Wait()
	}
	if s.Dir != "" {
		_ = os.RemoveAll(s.Dir)
	}
}

// BinDir returns where the binaries are expected.
func BinDir() string {
	if d := os.Getenv("LINNET_K8S_BIN"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "linnet", "k8s", Version)
}

// waitBinaries waits for the named binaries to be built (the build script
// makes kube-apiserver first, so API tests need not wait for kubectl).
func waitBinaries(dir string, names ...string) error {
	return peerbuild.Build{
		Dir: dir, Names: names, Failed: "k8s-apiserver: FAILED", Script: "scripts/k8s-apiserver.sh",
		WaitEnv: "LINNET_K8S_WAIT", Wait: 11 * time.Minute,
	}.Await(2 * time.Second)
}

func freePort() (int, error) { return freeport.Port() }

func start() (*Server, error) {
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, errors.New("etcd not found in PATH (Debian package etcd-server; scripts/test-deps.sh installs it)")
	}
	bin := BinDir()
	if err := waitBinaries(bin, "kube-apiserver"); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "linnet-k8stest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, BinDir: bin}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()

	// etcd
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	pport, err := freePort()
	if err != nil {
		return nil, err
	}
	cu := "http://127.0.0.1:" + strconv.Itoa(cport)
	pu := "http://127.0.0.1:" + strconv.Itoa(pport)
	etcdLog, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	defer etcdLog.Close()
	s.etcd = exec.Command(etcdBin, "--name", "t", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "t="+pu, "--log-level", "warn")
	s.etcd.Stdout, s.etcd.Stderr = etcdLog, etcdLog
	if err := s.etcd.Start(); err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}

	// kube-apiserver
	if err := writeKeys(dir); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(Token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	apiLog, err := os.Create(filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	defer apiLog.Close()
	s.apiserver = exec.Command(filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+cu,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(s.Port),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--v=0",
	)
	s.apiserver.Stdout, s.apiserver.Stderr = apiLog, apiLog
	if err := s.apiserver.Start(); err != nil {
		return nil, fmt.Errorf("start kube-apiserver: %w", err)
	}
	exited := make(chan error, 1)
	s.apiDone = make(chan error, 1)
	go func() {
		err := s.apiserver.Wait()
		exited <- err
		s.apiDone <- err
	}()
	if err := s.waitReady(exited, 60*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "kube-apiserver.log"))
		return nil, fmt.Errorf("%v; kube-apiserver.log:\n%s", err, peerbuild.Tail(log, 3000))
	}

	s.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:%d
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin, namespace: default}
current-context: test
`, s.Port, Token)
	if err := os.WriteFile(s.Kubeconfig, []byte(kc), 0o600); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *Server) waitReady(exited <-chan error, d time.Duration) error {
	cl := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // test server
	}
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("kube-apiserver exited: %v", err)
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(s.Port)+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+Token)
		resp, err := cl.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver not ready after %v (last: %s)", d, strings.TrimSpace(last))
}

func writeKeys(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), priv, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pub, 0o600)
}
