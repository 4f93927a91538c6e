package k8s

// Traffic through a real `linnet router` whose io.l5d.k8s namer watches a
// real kube-apiserver. The API refuses loopback addresses in endpoints, so
// the backends live in a network namespace this test creates: a veth pair
// with 10.213.N.1/24 on the host side and the backends' addresses on the
// other, removed at the end. Nothing else leaves loopback.

import (
	"bufio"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/k8s/k8stest"
	"github.com/linnet-mesh/linnet/internal/testutil/freeport"
)

// backendEnv makes the test binary a backend server (see TestMain): a
// comma-separated list of addresses to serve; each answers with its own
// address. It exits when its stdin closes.
const backendEnv = "LINNET_NETNS_BACKENDS"

func init() {
	addrs := os.Getenv(backendEnv)
	if addrs == "" {
		return
	}
	for _, a := range strings.Split(addrs, ",") {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			fmt.Fprintln(os.Stderr, "backend:", err)
			os.Exit(2)
		}
		body := []byte(a)
		go func() {
			_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
		}()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// netns is a network namespace joined to the host by a veth pair.
type netns struct {
	name, subnet string // subnet "10.213.N"
}

// privileged returns the command for args, through `sudo -n` when the
// test does not run as root (CI runners have password-less sudo).
func privileged(args ...string) *exec.Cmd {
	if os.Geteuid() != 0 {
		args = append([]string{"sudo", "-n", "--preserve-env=" + backendEnv}, args...)
	}
	return exec.Command(args[0], args[1:]...)
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := privileged(args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetns(t *testing.T, hosts int) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := exec.Command("sudo", "-n", "true").Run(); err != nil {
			t.Fatal("the traffic test creates a network namespace: it needs root or password-less sudo")
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) not found; scripts/test-deps.sh installs it")
	}
	id := os.Getpid() % 100000
	n := &netns{name: fmt.Sprintf("linnet-%d", id), subnet: fmt.Sprintf("10.213.%d", os.Getpid()%250+1)}
	if out, _ := exec.Command("ip", "route", "get", n.subnet+".2").CombinedOutput(); strings.Contains(string(out), " dev ") && !strings.Contains(string(out), "via") {
		t.Fatalf("%s.0/24 is already routed here: %s", n.subnet, out)
	}
	hostIf, nsIf := fmt.Sprintf("lnh%d", id), fmt.Sprintf("lnn%d", id)
	run(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() { _ = privileged("ip", "netns", "del", n.name).Run() }) // also removes the veth pair
	run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	run(t, "ip", "link", "set", nsIf, "netns", n.name)
	run(t, "ip", "addr", "add", n.subnet+".1/24", "dev", hostIf)
	run(t, "ip", "link", "set", hostIf, "up")
	for i := range hosts {
		run(t, "ip", "netns", "exec", n.name, "ip", "addr", "add", fmt.Sprintf("%s.%d/24", n.subnet, i+2), "dev", nsIf)
	}
	run(t, "ip", "netns", "exec", n.name, "ip", "link", "set", nsIf, "up")
	run(t, "ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// serve starts backends on addrs inside the namespace.
func (n *netns) serve(t *testing.T, addrs ...string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := privileged("ip", "netns", "exec", n.name, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), backendEnv+"="+strings.Join(addrs, ","))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Closing stdin ends the backends (also through sudo, which cannot
		// relay SIGKILL); the kill is for a backend that hangs.
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("backends did not start: %q %v", line, err)
	}
}

func linnetBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LINNET_BIN"); p != "" {
		return p
	}
	p := filepath.Join(t.TempDir(), "linnet")
	cmd := exec.Command("go", "build", "-o", p, "github.com/linnet-mesh/linnet/cmd/linnet")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// slice writes EndpointSlice world-1 of Service world (port http 7777).
func slice(t *testing.T, srv *k8stest.Server, ns string, eps ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: world-1
  namespace: %s
  labels: {kubernetes.io/service-name: world}
addressType: IPv4
ports: [{name: http, port: 7777, protocol: TCP}]
endpoints:
`, ns)
	for _, e := range eps {
		ready := !strings.HasPrefix(e, "!")
		fmt.Fprintf(&b, "- addresses: [%s]\n  conditions: {ready: %t}\n", strings.TrimPrefix(e, "!"), ready)
	}
	if len(eps) == 0 {
		b.WriteString("[]\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := srv.Kubectl(ctx, []byte(b.String()), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

func TestTrafficFollowsEndpoints(t *testing.T) {
	srv := k8stest.Shared(t)
	n := newNetns(t, 3)
	a, b, c := n.subnet+".2", n.subnet+".3", n.subnet+".4"
	n.serve(t, a+":7777", b+":7777", c+":7777")

	ns := fmt.Sprintf("traffic-%d-%d", os.Getpid(), runSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %[1]s}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: world, namespace: %[1]s}\nspec:\n  ports: [{name: http, port: 80, targetPort: http}]\n", ns)
	if out, err := srv.Kubectl(ctx, []byte(svc), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	slice(t, srv, ns, a, b)

	pc := srv.ProxyConn(t)
	get := startRouter(t, fmt.Sprintf(`namers:
- kind: io.l5d.k8s
  host: %s
  port: %d
routers:
- protocol: http
  dtab: /svc => /#/io.l5d.k8s/%s/http;
  servers: [{ip: 127.0.0.1, port: %%d}]
`, pc.Host, pc.Port, ns), "world")

	// Load runs through every healthy change; none may fail.
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	seen := sync.Map{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				body, err := get()
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				v, _ := seen.LoadOrStore(body, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		})
	}
	count := func(addr string) int64 {
		if v, ok := seen.Load(addr + ":7777"); ok {
			return v.(*atomic.Int64).Load()
		}
		return 0
	}
	// waitOnly waits until, over a fresh window, traffic reaches exactly want.
	waitOnly := func(what string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			seen.Clear()
			time.Sleep(500 * time.Millisecond)
			ok := true
			for _, x := range []string{a, b, c} {
				wanted := false
				for _, w := range want {
					wanted = wanted || w == x
				}
				if got := count(x); wanted != (got > 0) {
					ok = false
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: traffic went to %d/%d/%d requests of %s/%s/%s, want only %v", what, count(a), count(b), count(c), a, b, c, want)
			}
		}
	}
	waitOnly("two endpoints", a, b)
	slice(t, srv, ns, a, b, c)
	waitOnly("scaled up", a, b, c)
	slice(t, srv, ns, "!"+a, b, c)
	waitOnly("one not ready", b, c)
	slice(t, srv, ns, c)
	waitOnly("scaled down", c)
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed while healthy endpoints changed; first: %v", f, sent.Load(), firstErr.Load())
	}
	t.Logf("%d requests, no failures", sent.Load())

	// Deleted: requests fail; re-created: traffic resumes.
	if out, err := srv.Kubectl(ctx, nil, "-n", ns, "delete", "service/world", "endpointslice/world-1"); err != nil {
		t.Fatalf("kubectl delete: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := get(); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("requests still succeed after the service was deleted")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := srv.Kubectl(ctx, []byte(svc), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	slice(t, srv, ns, b)
	deadline = time.Now().Add(20 * time.Second)
	for {
		body, err := get()
		if err == nil && body == b+":7777" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-created service not served: %q %v", body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The walkthrough's ingress controller: an Ingress for www.hello.world,
	// a router named by io.l5d.ingress with /svc => /#/io.l5d.k8s.
	ing := fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: hello-world, namespace: %s}
spec:
  ingressClassName: linkerd
  rules:
  - host: www.hello.world
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: world, port: {name: http}}}}
`, ns)
	if out, err := srv.Kubectl(ctx, []byte(ing), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	ingressGet := startRouter(t, fmt.Sprintf(`namers:
- kind: io.l5d.k8s
  host: %[1]s
  port: %[2]d
routers:
- protocol: http
  label: ingress
  identifier:
    kind: io.l5d.ingress
    namespace: %[3]s
    host: %[1]s
    port: %[2]d
  dtab: /svc => /#/io.l5d.k8s
  servers: [{ip: 127.0.0.1, port: %%d, clearContext: true}]
`, pc.Host, pc.Port, ns), "www.hello.world")
	for range 20 {
		if body, err := ingressGet(); err != nil || body != b+":7777" {
			t.Fatalf("through the ingress: %q %v", body, err)
		}
	}
	slice(t, srv, ns, a, c)
	deadline = time.Now().Add(20 * time.Second)
	for {
		body, err := ingressGet()
		if err != nil {
			t.Fatalf("through the ingress while endpoints change: %v", err)
		}
		if body != b+":7777" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ingress traffic did not follow the endpoints")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRouter runs `linnet router` with cfg (whose server port is a %d
// placeholder) and returns a function sending one request with Host host,
// once a request has succeeded.
func startRouter(t *testing.T, cfg, host string) func() (string, error) {
	t.Helper()
	routerPort, adminPort := freePort(t), freePort(t)
	cfg = fmt.Sprintf("admin: {ip: 127.0.0.1, port: %d}\n", adminPort) + fmt.Sprintf(cfg, routerPort)
	cfgPath := filepath.Join(t.TempDir(), "linkerd.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	router := exec.Command(linnetBin(t), "router", cfgPath)
	var stderr strings.Builder
	var stderrMu sync.Mutex
	router.Stderr = writerFunc(func(p []byte) (int, error) { stderrMu.Lock(); defer stderrMu.Unlock(); return stderr.Write(p) })
	if err := router.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Process.Kill(); _ = router.Wait() })

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	get := func() (string, error) {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(routerPort)+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: %s", resp.Status, body)
		}
		return string(body), nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := get()
		if err == nil {
			return get
		}
		if time.Now().After(deadline) {
			stderrMu.Lock()
			defer stderrMu.Unlock()
			t.Fatalf("router never served %s: %v\nconfig:\n%s\nstderr:\n%s", host, err, cfg, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runSeq makes Kubernetes namespaces unique across repeated runs (-count).
var runSeq atomic.Int64

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
