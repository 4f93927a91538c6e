package routerd

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/linnet-mesh/linnet/internal/namer/fs" // io.l5d.fs
)

// loopbackBackend is an HTTP server on ip (a loopback address) that
// answers "<name> <l5d-dst-client>" and counts its requests.
type loopbackBackend struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
}

func startLoopbackBackend(t *testing.T, name, ip string) *loopbackBackend {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listening on %s: %v", ip, err)
	}
	b := &loopbackBackend{name: name}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		fmt.Fprintf(w, "%s %s", name, r.Header.Get("l5d-dst-client"))
	}))
	b.srv.Listener.Close()
	b.srv.Listener = ln
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

func (b *loopbackBackend) hostPort() (string, string) {
	h, p, _ := net.SplitHostPort(b.srv.Listener.Addr().String())
	return h, p
}

// The transformers io.l5d.specificHost, io.l5d.replace and io.l5d.const
// in a router built from config text, with an io.l5d.fs namer whose
// service lists one endpoint on 127.0.0.1 and one on 127.0.0.2: real
// requests reach only the endpoints the transformer leaves.
func TestTransformersRouteRealRequests(t *testing.T) {
	one := startLoopbackBackend(t, "one", "127.0.0.1")
	two := startLoopbackBackend(t, "two", "127.0.0.2")
	h1, p1 := one.hostPort()
	h2, p2 := two.hostPort()
	if h1 != "127.0.0.1" || h2 != "127.0.0.2" {
		t.Fatalf("backends on %s and %s", h1, h2)
	}
	dir := t.TempDir()
	writeFile := func(name, text string) {
		t.Helper()
		// Write then rename, so the namer never reads a half-written file.
		tmp := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("web", fmt.Sprintf("127.0.0.1 %s\n127.0.0.2 %s\n", p1, p2))

	p, err := startFrom(t, `
admin: {port: 0}
namers:
- kind: io.l5d.fs
  rootDir: `+dir+`
routers:
- protocol: http
  label: host1
  dtab: /svc => /#/io.l5d.fs;
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.specificHost
      host: 127.0.0.1
  servers: [{port: 0}]
- protocol: http
  label: host2
  dtab: /svc => /#/io.l5d.fs;
  interpreter:
    kind: default
    transformers:
    - {kind: io.l5d.specificHost, host: 127.0.0.2}
  servers: [{port: 0}]
- protocol: http
  label: replace
  dtab: /svc => /#/io.l5d.fs;
  interpreter:
    kind: default
    transformers:
    - {kind: io.l5d.replace, path: /$/inet/127.0.0.2/`+p2+`}
  servers: [{port: 0}]
- protocol: http
  label: const
  dtab: /svc => /#/io.l5d.fs;
  interpreter:
    kind: default
    transformers:
    - {kind: io.l5d.const, path: /$/inet/127.0.0.1/`+p1+`}
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	addrs := p.ServerAddrs()
	if len(addrs) != 4 {
		t.Fatalf("%d servers; want 4", len(addrs))
	}
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	get := func(addr, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s via %s: %v", host, addr, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// sendAll sends n requests for host and returns the bodies seen and
	// the hits each backend got.
	sendAll := func(addr, host string, n int) (bodies map[string]int, hits1, hits2 int64) {
		t.Helper()
		b1, b2 := one.hits.Load(), two.hits.Load()
		bodies = map[string]int{}
		for range n {
			code, body := get(addr, host)
			if code != http.StatusOK {
				t.Fatalf("%s via %s: %d %s", host, addr, code, body)
			}
			bodies[body]++
		}
		return bodies, one.hits.Load() - b1, two.hits.Load() - b2
	}

	const n = 30
	fsID := "/%/io.l5d.specificHost/#/io.l5d.fs/web"
	bodies, n1, n2 := sendAll(addrs[0], "web", n)
	if n1 != n || n2 != 0 || bodies["one "+fsID] != n {
		t.Errorf("specificHost 127.0.0.1: backends got %d/%d, bodies %v; want all %d on 127.0.0.1 as client %s", n1, n2, bodies, n, fsID)
	}
	bodies, n1, n2 = sendAll(addrs[1], "web", n)
	if n1 != 0 || n2 != n || bodies["two "+fsID] != n {
		t.Errorf("specificHost 127.0.0.2: backends got %d/%d, bodies %v; want all %d on 127.0.0.2", n1, n2, bodies, n)
	}

	// replace: a bound name becomes the path; a name that does not exist
	// stays negative (no file "nosuch": the fs namer answers neg).
	replID := "/%/io.l5d.replace/$/inet/127.0.0.2/" + p2
	bodies, n1, n2 = sendAll(addrs[2], "web", 5)
	if n1 != 0 || n2 != 5 || bodies["two "+replID] != 5 {
		t.Errorf("replace: backends got %d/%d, bodies %v; want all 5 on 127.0.0.2 as client %s", n1, n2, bodies, replID)
	}
	b1, b2 := one.hits.Load(), two.hits.Load()
	if code, body := get(addrs[2], "nosuch"); code < 400 || one.hits.Load() != b1 || two.hits.Load() != b2 {
		t.Errorf("replace of a negative name: %d %q and a backend was called; want an error and no backend", code, body)
	}

	// const: whatever the dtab says, even for a name that does not exist.
	constID := "/%/io.l5d.const/$/inet/127.0.0.1/" + p1
	for _, host := range []string{"web", "nosuch"} {
		bodies, n1, n2 = sendAll(addrs[3], host, 5)
		if n1 != 5 || n2 != 0 || bodies["one "+constID] != 5 {
			t.Errorf("const, host %s: backends got %d/%d, bodies %v; want all 5 on 127.0.0.1 as client %s", host, n1, n2, bodies, constID)
		}
	}

	// The transformed address set stays live: a new endpoint on 127.0.0.1
	// in the namer's file is followed, one on 127.0.0.2 is still left out.
	three := startLoopbackBackend(t, "three", "127.0.0.1")
	_, p3 := three.hostPort()
	writeFile("web", fmt.Sprintf("127.0.0.1 %s\n127.0.0.2 %s\n", p3, p2))
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(addrs[0], "web")
		if strings.HasPrefix(body, "three ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the file changed, still %q; want the new endpoint on 127.0.0.1", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b1, b2 = one.hits.Load(), two.hits.Load()
	bodies, _, _ = sendAll(addrs[0], "web", 10)
	if bodies["three "+fsID] != 10 || one.hits.Load() != b1 || two.hits.Load() != b2 {
		t.Errorf("after the change: bodies %v, old backends +%d/+%d; want all 10 on the new 127.0.0.1 endpoint",
			bodies, one.hits.Load()-b1, two.hits.Load()-b2)
	}
}
