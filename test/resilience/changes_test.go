package resilience

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shifted waits until to has answered 50 more requests and from has
// stopped answering (no new hits over 300ms), and returns how long the
// shift took.
func shifted(t *testing.T, from, to *backend, within time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	base := to.hits.Load()
	if !waitFor(within, func() bool { return to.hits.Load() > base+50 }) {
		t.Fatalf("%s got %d requests within %v of the change", to.name, to.hits.Load()-base, within)
	}
	took := time.Since(t0)
	if from == nil {
		return took
	}
	if !waitFor(within, func() bool {
		n := from.hits.Load()
		time.Sleep(300 * time.Millisecond)
		return from.hits.Load() == n
	}) {
		t.Fatalf("%s still gets requests %v after the change", from.name, within)
	}
	return took
}

// The fs namer's file is rewritten twice while load runs (a, b → b, c →
// c, d); endpoints leave only after they are out of the set. No request
// fails.
func TestEndpointSetChangeUnderLoad(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a", nil), newBackend(t, "b", nil)
	c, d := newBackend(t, "c", nil), newBackend(t, "d", nil)
	dir := fsDir(t, map[string]string{"web": a.fsLine() + b.fsLine()})
	admin, port := freePort(t), freePort(t)
	start(t, "router", fsRouter(admin, port, dir, ""), admin)
	l := newLoad(port, "web", 8)
	l.background(8)
	if !waitFor(10*time.Second, func() bool { return a.hits.Load() > 50 && b.hits.Load() > 50 }) {
		t.Fatalf("initial set not serving: a=%d b=%d; failures %v", a.hits.Load(), b.hits.Load(), l.failed())
	}

	writeFile(t, filepath.Join(dir, "web"), b.fsLine()+c.fsLine())
	took1 := shifted(t, a, c, 10*time.Second)
	a.kill()

	writeFile(t, filepath.Join(dir, "web"), c.fsLine()+d.fsLine())
	took2 := shifted(t, b, d, 10*time.Second)
	b.kill()
	time.Sleep(200 * time.Millisecond)
	l.halt()

	l.requireNoFailures(t)
	t.Logf("requests %d, failures %d; set a,b → b,c took %v, → c,d took %v; hits a=%d b=%d c=%d d=%d",
		l.sent.Load(), len(l.failed()), took1.Round(time.Millisecond), took2.Round(time.Millisecond),
		a.hits.Load(), b.hits.Load(), c.hits.Load(), d.hits.Load())
}

// A router following namerd (io.l5d.namerd.http) under load: namerd's
// dtab is replaced through its HTTP API, then the fs file namerd
// resolves the new name with is rewritten. No request fails.
func TestNamerdDtabChangeUnderLoad(t *testing.T) {
	t.Parallel()
	a, b, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	dir := fsDir(t, map[string]string{"web": a.fsLine(), "web2": b.fsLine()})
	ndAdmin, ndAPI := freePort(t), freePort(t)
	start(t, "namerd", fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
namers:
- kind: io.l5d.fs
  rootDir: %s
storage:
  kind: io.l5d.inMemory
  namespaces:
    default: |
      /svc => /#/io.l5d.fs;
interfaces:
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: %d
`, ndAdmin, dir, ndAPI), ndAdmin)

	admin, port := freePort(t), freePort(t)
	start(t, "router", fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
routers:
- protocol: http
  label: web
  interpreter:
    kind: io.l5d.namerd.http
    experimental: true
    dst: /$/inet/127.0.0.1/%d
    namespace: default
  servers:
  - ip: 127.0.0.1
    port: %d
`, admin, ndAPI, port), admin)

	l := newLoad(port, "web", 8)
	l.background(8)
	if !waitFor(10*time.Second, func() bool { return a.hits.Load() > 50 }) {
		t.Fatalf("router not serving through namerd: a=%d; failures %v", a.hits.Load(), l.failed())
	}

	// The dtab change: /svc/web now goes to the name web2.
	req, _ := http.NewRequest("PUT", fmt.Sprintf("http://127.0.0.1:%d/api/1/dtabs/default", ndAPI),
		strings.NewReader("/svc => /#/io.l5d.fs; /svc/web => /#/io.l5d.fs/web2;"))
	req.Header.Set("Content-Type", "application/dtab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT dtab: %d %s", resp.StatusCode, body)
	}
	took1 := shifted(t, a, b, 10*time.Second)
	a.kill()

	// The endpoint-set change, seen by namerd's namer.
	writeFile(t, filepath.Join(dir, "web2"), c.fsLine())
	took2 := shifted(t, b, c, 10*time.Second)
	b.kill()
	time.Sleep(200 * time.Millisecond)
	l.halt()

	l.requireNoFailures(t)
	t.Logf("requests %d, failures %d; namerd dtab change took %v to shift traffic, fs change behind namerd %v; hits a=%d b=%d c=%d",
		l.sent.Load(), len(l.failed()), took1.Round(time.Millisecond), took2.Round(time.Millisecond),
		a.hits.Load(), b.hits.Load(), c.hits.Load())
}
