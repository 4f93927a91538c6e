// Package consultest runs a real Consul agent (v1.20.0 in dev mode, built by
// scripts/consul.sh) on loopback for tests.
//
// The binary is $LINNET_CONSUL when set, else consul in $LINNET_CONSUL_BIN,
// else in ${XDG_CACHE_HOME:-$HOME/.cache}/linnet/consul/v1.20.0. `make test`
// starts its build in the background at the beginning (it takes minutes
// cold), so Start waits for the binary to appear, up to $LINNET_CONSUL_WAIT
// (a Go duration, default 30m: on 2 cores the build competes with the
// kube-apiserver build and the test compiles) or until the build log
// reports a failure. A missing binary with no build in progress fails the
// test with the command to run; it is never a silent skip.
//
// Every agent listens on free 127.0.0.1 ports only, keeps its data in a
// temporary folder and is stopped by PID.
package consultest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"syscall"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/freeport"
	"github.com/linnet-mesh/linnet/internal/testutil/peerbuild"
)

// Version is the Consul release the tests run against.
const Version = "v1.20.0"

// BinDir returns the folder scripts/consul.sh builds consul into.
func BinDir() string {
	if d := os.Getenv("LINNET_CONSUL_BIN"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "linnet", "consul", Version)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the consul binary, waiting for a background build if one
// is running.
func Binary() (string, error) {
	binOnce.Do(func() {
		if b := os.Getenv("LINNET_CONSUL"); b != "" {
			binPath = b
			return
		}
		dir := BinDir()
		binErr = waitBinary(dir)
		binPath = filepath.Join(dir, "consul")
	})
	return binPath, binErr
}

func waitBinary(dir string) error {
	return peerbuild.Build{
		Dir: dir, Names: []string{"consul"}, Failed: "consul: FAILED", Script: "scripts/consul.sh",
		WaitEnv: "LINNET_CONSUL_WAIT", Wait: 30 * time.Minute,
	}.Await(2 * time.Second)
}

// Agent is a running `consul agent -dev`.
type Agent struct {
	bin string
	dir string
	// ports: http, dns, serf LAN, serf WAN, server RPC, https (0: off).
	http, dns, serfLAN, serfWAN, server, https int
	tls                                        *TLS

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// TLS makes the agent serve its API over HTTPS too, on HTTPSPort.
type TLS struct {
	// CertPath and KeyPath are the agent's certificate and key (PEM).
	CertPath, KeyPath string
	// CAPath, when set, is the CA that client certificates must chain to:
	// the HTTPS API then requires one (verify_incoming).
	CAPath string
}

// Start starts a dev agent (see New) that is stopped when the test ends.
func Start(t testing.TB) *Agent { return StartTLS(t, nil) }

// StartTLS is Start with the HTTPS API on as tc says (nil: plain HTTP
// only).
func StartTLS(t testing.TB, tc *TLS) *Agent {
	t.Helper()
	a, err := newAgent(tc)
	if err != nil {
		t.Fatalf("consultest: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

var (
	shared    *Agent
	sharedErr error
	sharedMu  sync.Mutex
)

// Shared returns the package's shared agent, starting it on first use.
// Tests that share it must use their own service names and keys.
func Shared(t testing.TB) *Agent {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = New()
	}
	if sharedErr != nil {
		t.Fatalf("consultest: %v", sharedErr)
	}
	return shared
}

// Main runs the package's tests, then stops the shared agent if one was
// started: `func TestMain(m *testing.M) { os.Exit(consultest.Main(m)) }`.
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Close()
		shared = nil
	}
	return code
}

// New starts a dev agent on free 127.0.0.1 ports with a temporary data
// folder and waits until it has elected itself leader and synced its node
// into the catalog. Close stops it.
func New() (*Agent, error) { return newAgent(nil) }

func newAgent(tc *TLS) (*Agent, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "consultest-")
	if err != nil {
		return nil, err
	}
	a := &Agent{bin: bin, dir: dir, tls: tc}
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	a.http, a.dns, a.serfLAN, a.serfWAN, a.server = ports[0], ports[1], ports[2], ports[3], ports[4]
	if tc != nil {
		a.https = ports[5]
	}
	if err := a.start(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close stops the agent and removes its folder.
func (a *Agent) Close() {
	a.Stop()
	_ = os.RemoveAll(a.dir)
}

// Addr returns the HTTP API address, 127.0.0.1:port.
func (a *Agent) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.http)) }

// Port returns the HTTP API port.
func (a *Agent) Port() int { return a.http }

// HTTPSPort returns the HTTPS API port (0 unless started with TLS).
func (a *Agent) HTTPSPort() int { return a.https }

// Restart starts the agent again after Stop (same ports; a dev agent keeps
// its state in memory, so the catalog and KV start empty). Calling it on a
// running agent restarts it.
func (a *Agent) Restart(t testing.TB) {
	t.Helper()
	if err := a.start(); err != nil {
		t.Fatalf("consultest: %v", err)
	}
}

func (a *Agent) start() error {
	a.Stop()
	data := filepath.Join(a.dir, "data")
	_ = os.RemoveAll(data)
	args := []string{"agent", "-dev",
		"-node", "linnet-test",
		"-datacenter", "dc1",
		"-bind", "127.0.0.1", "-client", "127.0.0.1", "-advertise", "127.0.0.1",
		"-http-port", strconv.Itoa(a.http),
		"-dns-port", strconv.Itoa(a.dns),
		"-serf-lan-port", strconv.Itoa(a.serfLAN),
		"-serf-wan-port", strconv.Itoa(a.serfWAN),
		"-server-port", strconv.Itoa(a.server),
		"-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-data-dir", data,
		"-log-level", "warn",
	}
	if tc := a.tls; tc != nil {
		verify := "false"
		ca := ""
		if tc.CAPath != "" {
			verify, ca = "true", fmt.Sprintf("ca_file = %q\n", tc.CAPath)
		}
		args = append(args,
			"-hcl", fmt.Sprintf("ports { https = %d }", a.https),
			"-hcl", fmt.Sprintf("tls {\nhttps {\ncert_file = %q\nkey_file = %q\n%sverify_incoming = %s\n}\n}", tc.CertPath, tc.KeyPath, ca, verify))
	}
	cmd := exec.Command(a.bin, args...)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = syncWriter{&a.mu, log}, syncWriter{&a.mu, log}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting consul: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	a.mu.Lock()
	a.cmd, a.done, a.log = cmd, done, log
	a.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("consul exited at start; its output:\n%s", a.output())
		default:
		}
		var leader string
		var nodes []json.RawMessage
		if a.getJSON("/v1/status/leader", &leader) == nil && leader != "" &&
			a.getJSON("/v1/catalog/nodes", &nodes) == nil && len(nodes) > 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := a.output()
	a.Stop()
	return fmt.Errorf("consul not ready within 30s; its output:\n%s", out)
}

func (a *Agent) output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Stop terminates the agent by PID (SIGTERM, then SIGKILL after 5s) and
// waits for it. It is a no-op on a stopped agent.
func (a *Agent) Stop() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func (a *Agent) getJSON(path string, v any) error {
	code, body, err := a.Do(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, code, body)
	}
	return json.Unmarshal(body, v)
}

// Do sends a request to the agent's HTTP API; body, when not nil, is sent
// as JSON (a string or []byte is sent as is).
func (a *Agent) Do(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+a.Addr()+path, r)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// MustDo is Do that fails the test unless the answer is 200 OK.
func (a *Agent) MustDo(t testing.TB, method, path string, body any) []byte {
	t.Helper()
	code, out, err := a.Do(method, path, body)
	if err != nil {
		t.Fatalf("consul %s %s: %v", method, path, err)
	}
	if code != http.StatusOK {
		t.Fatalf("consul %s %s: %d %s", method, path, code, out)
	}
	return out
}

// Service is an agent service registration (the fields tests use).
type Service struct {
	ID      string            `json:"ID"`
	Name    string            `json:"Name"`
	Tags    []string          `json:"Tags,omitempty"`
	Address string            `json:"Address,omitempty"`
	Port    int               `json:"Port"`
	Meta    map[string]string `json:"Meta,omitempty"`
	// TTL, when set, gives the instance a TTL health check named
	// "service:<ID>" that starts critical; set it with Check.
	TTL string `json:"-"`
}

// Register registers an instance with the agent (PUT
// /v1/agent/service/register).
func (a *Agent) Register(t testing.TB, s Service) {
	t.Helper()
	body := map[string]any{"ID": s.ID, "Name": s.Name, "Tags": s.Tags, "Address": s.Address, "Port": s.Port, "Meta": s.Meta}
	if s.TTL != "" {
		body["Check"] = map[string]any{"CheckID": "service:" + s.ID, "TTL": s.TTL}
	}
	a.MustDo(t, http.MethodPut, "/v1/agent/service/register", body)
}

// Deregister removes an instance from the agent.
func (a *Agent) Deregister(t testing.TB, id string) {
	t.Helper()
	a.MustDo(t, http.MethodPut, "/v1/agent/service/deregister/"+id, nil)
}

// Check sets the TTL check of instance id to "pass", "warn" or "fail".
func (a *Agent) Check(t testing.TB, id, status string) {
	t.Helper()
	a.MustDo(t, http.MethodPut, "/v1/agent/check/"+status+"/service:"+id, nil)
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	seen := map[int]bool{}
	for len(ports) < n {
		p, err := freeport.Port()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// Request is what a Proxy saw of one request.
type Request struct {
	Method, Path string
	Query        url.Values
	Token        string // X-Consul-Token
}

// Proxy is a recording reverse proxy in front of an agent's HTTP API, for
// tests that check what a client sends.
type Proxy struct {
	srv *http.Server
	ln  net.Listener
	mu  sync.Mutex
	log []Request
}

// NewProxy starts a proxy to a on a free loopback port; it is closed when
// the test ends.
func NewProxy(t testing.TB, a *Agent) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := &url.URL{Scheme: "http", Host: a.Addr()}
	p := &Proxy{ln: ln}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			p.mu.Lock()
			p.log = append(p.log, Request{Method: r.In.Method, Path: r.In.URL.Path, Query: r.In.URL.Query(), Token: r.In.Header.Get("X-Consul-Token")})
			p.mu.Unlock()
			r.SetURL(target)
		},
		FlushInterval: -1,
		// Cancelled blocking queries are routine here: answer quietly.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	p.srv = &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

// Port returns the proxy's port on 127.0.0.1.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Requests returns the requests seen so far whose path starts with prefix.
func (p *Proxy) Requests(prefix string) []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Request
	for _, r := range p.log {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}
