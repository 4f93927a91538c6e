package zk

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
	"github.com/linnet-mesh/linnet/internal/zk/zktest"
)

// TestNamerdOnZooKeeper runs the real linnet binary as namerd with
// `storage: {kind: io.l5d.zk}`: the HTTP API writes znodes with
// data-version ETags, refuses a stale If-Match, and a watch stream
// follows writes made straight to ZooKeeper by someone else, also across
// a ZooKeeper restart.
func TestNamerdOnZooKeeper(t *testing.T) {
	srv := zktest.Start(t)
	prefix := freshPrefix()
	admin, api := linnettest.FreePort(t), linnettest.FreePort(t)
	linnettest.StartNamerd(t, fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
storage:
  kind: io.l5d.zk
  experimental: true
  zkAddrs:
  - host: 127.0.0.1
    port: '%d'
  pathPrefix: %s
  sessionTimeoutMs: 10000
interfaces:
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: %d
`, admin, srv.HostPort().Port, prefix, api), admin)
	base := fmt.Sprintf("http://127.0.0.1:%d/api/1/dtabs", api)

	do := func(method, url, body string, hdr ...string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/dtab")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	if code, _, body := do("POST", base+"/default", "/svc => /#/io.l5d.fs/v1;"); code != 204 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _, _ := do("POST", base+"/default", "/a=>/b"); code != 409 {
		t.Fatalf("create again: %d, want 409", code)
	}
	raw := srv.Client(t)
	ctx := ctxT(t)
	n, err := raw.Get(ctx, prefix+"/default")
	if err != nil || string(n.Data) != "/svc=>/#/io.l5d.fs/v1" {
		t.Fatalf("ZooKeeper holds %q (%v)", n.Data, err)
	}
	code, hdr, _ := do("GET", base+"/default", "", "Accept", "application/dtab")
	if code != 200 || hdr.Get("ETag") != "AAAAAA==" {
		t.Fatalf("get: %d ETag %q, want 200 and AAAAAA== (data version 0)", code, hdr.Get("ETag"))
	}

	wctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(wctx, "GET", base+"/default?watch=true", nil)
	req.Header.Set("Accept", "application/dtab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(want string) {
		t.Helper()
		select {
		case l := <-lines:
			if l != want {
				t.Fatalf("stream: got %q, want %q", l, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("stream: %q not received", want)
		}
	}
	next("/svc=>/#/io.l5d.fs/v1")

	if code, _, body := do("PUT", base+"/default", "/svc => /#/io.l5d.fs/v2;", "If-Match", "AAAAAA=="); code != 204 {
		t.Fatalf("update with the current ETag: %d %s", code, body)
	}
	next("/svc=>/#/io.l5d.fs/v2")
	if code, _, _ := do("PUT", base+"/default", "/svc => /#/io.l5d.fs/v9;", "If-Match", "AAAAAA=="); code != 412 {
		t.Fatalf("update with a stale ETag: %d, want 412", code)
	}
	if _, err := raw.Set(ctx, prefix+"/default", []byte("/svc=>/#/io.l5d.fs/v3"), -1); err != nil {
		t.Fatal(err)
	}
	next("/svc=>/#/io.l5d.fs/v3")

	srv.Restart()
	raw2 := srv.Client(t)
	if _, err := raw2.Set(ctxT(t), prefix+"/default", []byte("/svc=>/#/io.l5d.fs/v4"), -1); err != nil {
		t.Fatal(err)
	}
	next("/svc=>/#/io.l5d.fs/v4")
	if code, hdr, _ := do("GET", base+"/default", "", "Accept", "application/dtab"); code != 200 || hdr.Get("ETag") != "AAAAAw==" {
		t.Fatalf("get after the restart: %d ETag %q, want AAAAAw==", code, hdr.Get("ETag"))
	}
	if code, _, body := do("GET", base, "", "Accept", "application/json"); code != 200 || strings.TrimSpace(body) != `["default"]` {
		t.Fatalf("list: %d %s", code, body)
	}
}
