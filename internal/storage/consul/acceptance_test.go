package consul

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/namer/consul/consultest"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// TestNamerdOnConsul runs the real linnet binary as namerd with
// `storage: {kind: io.l5d.consul}`: the HTTP API writes to Consul KV with
// ModifyIndex ETags, refuses a stale If-Match, and a watch stream follows
// writes made straight to Consul by someone else.
func TestNamerdOnConsul(t *testing.T) {
	a := consultest.Shared(t)
	prefix := freshPrefix() // e.g. /linnet-test/7/dtabs
	key := strings.TrimPrefix(prefix, "/") + "/default"
	admin, api := linnettest.FreePort(t), linnettest.FreePort(t)
	linnettest.StartNamerd(t, fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
storage:
  kind: io.l5d.consul
  host: 127.0.0.1
  port: %d
  pathPrefix: %s
interfaces:
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: %d
`, admin, a.Port(), prefix, api), admin)
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
	kv := rawGet(t, a, key)
	if string(kv.Value) != "/svc=>/#/io.l5d.fs/v1" {
		t.Fatalf("Consul holds %q", kv.Value)
	}
	code, hdr, _ := do("GET", base+"/default", "", "Accept", "application/dtab")
	wantTag := base64.StdEncoding.EncodeToString([]byte(strconv.FormatUint(kv.ModifyIndex, 10)))
	if code != 200 || hdr.Get("ETag") != wantTag {
		t.Fatalf("get: %d ETag %q, want 200 and %q (the ModifyIndex)", code, hdr.Get("ETag"), wantTag)
	}

	// A watch stream sees writes through namerd and straight to Consul.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/default?watch=true", nil)
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
		case <-time.After(10 * time.Second):
			t.Fatalf("stream: %q not received", want)
		}
	}
	next("/svc=>/#/io.l5d.fs/v1")

	if code, _, body := do("PUT", base+"/default", "/svc => /#/io.l5d.fs/v2;", "If-Match", wantTag); code != 204 {
		t.Fatalf("update with the current ETag: %d %s", code, body)
	}
	next("/svc=>/#/io.l5d.fs/v2")
	if code, _, _ := do("PUT", base+"/default", "/svc => /#/io.l5d.fs/v9;", "If-Match", wantTag); code != 412 {
		t.Fatalf("update with a stale ETag: %d, want 412", code)
	}

	a.MustDo(t, http.MethodPut, "/v1/kv/"+key, "/svc=>/#/io.l5d.fs/v3")
	next("/svc=>/#/io.l5d.fs/v3")

	if code, _, body := do("GET", base, "", "Accept", "application/json"); code != 200 || strings.TrimSpace(body) != `["default"]` {
		t.Fatalf("list: %d %s", code, body)
	}
}
