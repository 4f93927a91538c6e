package namerd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	_ "github.com/linnet-mesh/linnet/internal/storage/zk"
	"github.com/linnet-mesh/linnet/internal/zk/zktest"
)

// zkConfig is a namerd on ZooKeeper (no credentials) with the HTTP API.
func zkConfig(srv *zktest.Server, prefix string) string {
	return fmt.Sprintf(`admin:
  port: 0
storage:
  kind: io.l5d.zk
  zkAddrs:
  - host: 127.0.0.1
    port: %d
  pathPrefix: %s
  sessionTimeoutMs: 4000
interfaces:
- kind: io.l5d.httpController
  port: 0
`, srv.HostPort().Port, prefix)
}

type answer struct {
	code int
	etag string
	body string
	took time.Duration
}

func do(t *testing.T, method, url, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/dtab")
	}
	req.Header.Set("Accept", "application/dtab")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("ETag"), string(b), time.Since(start)}
}

// A write ZooKeeper refuses (NOAUTH: the ACLs grant namerd read only)
// answers 403 with the namespace and ZooKeeper's reason in the body; reads
// still work.
func TestZkForbiddenWriteBody(t *testing.T) {
	srv := zktest.Start(t)
	raw := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	all, readOnly := gozk.WorldACL(gozk.PermAll), gozk.WorldACL(gozk.PermRead)
	// /ro/dtabs: namerd may not create namespaces. /rw/dtabs: it may, but
	// the namespace "locked" is read-only.
	for _, p := range []string{"/ro", "/rw"} {
		if err := raw.CreateAll(ctx, p, all); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Create(ctx, "/ro/dtabs", nil, 0, readOnly); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Create(ctx, "/rw/dtabs", nil, 0, all); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Create(ctx, "/rw/dtabs/locked", []byte("/svc=>/#/io.l5d.fs;"), 0, readOnly); err != nil {
		t.Fatal(err)
	}
	ro := "http://" + startProcess(t, zkConfig(srv, "/ro/dtabs")).InterfaceAddrs()[0] + "/api/1/dtabs/"
	rw := "http://" + startProcess(t, zkConfig(srv, "/rw/dtabs")).InterfaceAddrs()[0] + "/api/1/dtabs/"

	const refused = `forbidden: dtab "%s": ZooKeeper refused the write (NOAUTH): `
	for _, c := range []struct {
		method, url, ns string
	}{
		{http.MethodPost, ro, "default"},
		{http.MethodPut, ro, "default"}, // creates: refused the same way
		{http.MethodPut, rw, "locked"},
	} {
		want := fmt.Sprintf(refused, c.ns)
		a := do(t, c.method, c.url+c.ns, "/svc=>/#/io.l5d.k8s")
		if a.code != http.StatusForbidden || !strings.HasPrefix(a.body, want) || !strings.Contains(a.body, "not authenticated") {
			t.Errorf("%s %s: %d %q, want 403 %q…not authenticated", c.method, c.url+c.ns, a.code, a.body, want)
		}
	}
	if a := do(t, http.MethodGet, ro+"default", ""); a.code != http.StatusNotFound {
		t.Errorf("GET after the refused creates: %d %q, want 404", a.code, a.body)
	}
	if a := do(t, http.MethodGet, rw+"locked", ""); a.code != http.StatusOK || a.body != "/svc=>/#/io.l5d.fs\n" || a.etag != "AAAAAA==" {
		t.Errorf("GET of the read-only namespace: %+v, want the unchanged dtab, ETag AAAAAA==", a)
	}
	// A namespace namerd may create is not refused: the 403s were the ACLs.
	if a := do(t, http.MethodPost, rw+"free", "/a=>/b"); a.code != http.StatusNoContent {
		t.Errorf("POST under the writable prefix: %d %q", a.code, a.body)
	}
}

// During a ZooKeeper outage a GET of a namespace namerd watches (here a
// namerctl-style watch stream) answers at once from the live copy, with its
// ETag; a namespace nobody watches fails fast with 503 and the reason.
func TestZkOutageReadsLiveCopy(t *testing.T) {
	srv := zktest.Start(t)
	p := startProcess(t, zkConfig(srv, "/live/dtabs"))
	base := "http://" + p.InterfaceAddrs()[0] + "/api/1/dtabs/"
	for ns, d := range map[string]string{"watched": "/svc=>/#/io.l5d.fs", "cold": "/a=>/b"} {
		if a := do(t, http.MethodPost, base+ns, d); a.code != http.StatusNoContent {
			t.Fatalf("POST %s: %+v", ns, a)
		}
	}
	before := do(t, http.MethodGet, base+"watched", "")
	if before.code != http.StatusOK || before.etag == "" {
		t.Fatalf("GET before the outage: %+v", before)
	}

	// A watch, as a router or namerctl holds one.
	ctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"watched?watch=true", nil)
	req.Header.Set("Accept", "application/dtab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "/svc=>/#/io.l5d.fs\n" {
		t.Fatalf("watch: %q %v", line, err)
	}

	srv.Stop()
	store := p.Store().(*liveStore)
	for deadline := time.Now().Add(15 * time.Second); ; {
		if down, _ := store.down(); down {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store did not notice ZooKeeper stopped within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	const fast = 500 * time.Millisecond
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		a := do(t, method, base+"watched", "")
		want := before.body
		if method == http.MethodHead {
			want = ""
		}
		if a.code != http.StatusOK || a.etag != before.etag || a.body != want || a.took > fast {
			t.Errorf("%s of the watched namespace during the outage: %+v, want 200 %q ETag %s within %v", method, a, want, before.etag, fast)
		}
	}
	if _, m := get(t, "http://"+p.AdminAddr()+"/admin/metrics.json"); !strings.Contains(m, `"interface/io.l5d.httpController/dtab_reads_from_watch":2`) {
		t.Errorf("metrics do not count the 2 reads from the watch: %s", m)
	}
	a := do(t, http.MethodGet, base+"cold", "")
	if a.code != http.StatusServiceUnavailable || !strings.HasPrefix(a.body, `dtab "cold": storage unavailable`) || a.took > fast {
		t.Errorf("GET of an unwatched namespace during the outage: %+v, want a 503 naming the namespace within %v", a, fast)
	}
	if !strings.Contains(a.body, "127.0.0.1:") {
		t.Errorf("the 503 does not give ZooKeeper's state: %q", a.body)
	}

	// Once the watch ends, the copy is no longer live: 503 too.
	stopWatch()
	for deadline := time.Now().Add(5 * time.Second); ; {
		a := do(t, http.MethodGet, base+"watched", "")
		if a.code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET after the watch ended: %+v, want 503", a)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// ZooKeeper back: reads come from it again.
	srv.Restart()
	for deadline := time.Now().Add(20 * time.Second); ; {
		a := do(t, http.MethodGet, base+"cold", "")
		if a.code == http.StatusOK && a.body == "/a=>/b\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET after ZooKeeper restarted: %+v", a)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
