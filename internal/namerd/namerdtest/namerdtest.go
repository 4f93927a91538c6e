// Package namerdtest replays namerctl's HTTP exchanges
// (spec/namerd-api.md §9.3, checklist §9.5) against a namerd HTTP API, so
// that every storage backend, in-process or behind the real binary, can be
// checked with exactly the same requests. It also holds what the tests of
// the routers' namerd interpreters share (interpreter.go); namerdtest/inproc
// runs the namerd they talk to.
package namerdtest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/storage"
)

// Exchange is one HTTP request made exactly as namerctl makes it.
type Exchange struct {
	T    *testing.T
	Base string
}

// Reply is an answer: status, headers and the whole body.
type Reply struct {
	Status int
	Header http.Header
	Body   string
}

// Do makes one request and reads the whole answer.
func (x Exchange) Do(method, path string, header map[string]string, body string) Reply {
	x.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, x.Base+path, rd)
	if err != nil {
		x.T.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		x.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Reply{resp.StatusCode, resp.Header, string(b)}
}

// Want fails t unless the answer has this status and body.
func (r Reply) Want(t *testing.T, what string, status int, body string) {
	t.Helper()
	if r.Status != status || r.Body != body {
		t.Fatalf("%s: got %d %q, want %d %q", what, r.Status, r.Body, status, body)
	}
}

const acceptJSON = "application/json"

// NamerctlExchanges runs namerctl's session against the API at base, which
// must serve an empty store. firstETag is the ETag a freshly created dtab
// must have ("" when the backend does not promise one).
func NamerctlExchanges(t *testing.T, base, firstETag string) {
	t.Helper()
	x := Exchange{T: t, Base: base}
	json := map[string]string{"Accept": acceptJSON}

	// 1. list (namerctl dtab list)
	r := x.Do("GET", "/api/1/dtabs", json, "")
	r.Want(t, "empty list", 200, "[]\n")
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("list Content-Type %q", ct)
	}

	// 2. create from a file sent verbatim (namerctl dtab create x file)
	file := "\n  # routing for x\n  /svc => /#/io.l5d.fs ;\n\t/host/world=>/srv/world-v1;\n"
	dtabCT := map[string]string{"Content-Type": "application/dtab"}
	x.Do("POST", "/api/1/dtabs/x", dtabCT, file).Want(t, "create", 204, "")
	x.Do("POST", "/api/1/dtabs/x", dtabCT, file).Want(t, "second create", 409, "")
	x.Do("POST", "/api/1/dtabs/b", dtabCT, "/a=>/b").Want(t, "create b", 204, "")
	x.Do("GET", "/api/1/dtabs", json, "").Want(t, "sorted list", 200, `["b","x"]`+"\n")

	// 3. get (namerctl dtab get x)
	r = x.Do("GET", "/api/1/dtabs/x", json, "")
	r.Want(t, "get", 200, `[{"prefix":"/svc","dst":"/#/io.l5d.fs"},{"prefix":"/host/world","dst":"/srv/world-v1"}]`+"\n")
	etag := r.Header.Get("ETag")
	if etag == "" || strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") {
		t.Fatalf("ETag %q: want a bare base64 token", etag)
	}
	if firstETag != "" && etag != firstETag {
		t.Fatalf("ETag %q, want %q", etag, firstETag)
	}
	if _, err := storage.ParseVersion(etag); err != nil {
		t.Fatalf("ETag %q is not base64: %v", etag, err)
	}
	r = x.Do("GET", "/api/1/dtabs/x", map[string]string{"Accept": "application/dtab;q=0.9, application/json"}, "")
	r.Want(t, "get as dtab", 200, "/svc=>/#/io.l5d.fs;/host/world=>/srv/world-v1\n")
	if ct := r.Header.Get("Content-Type"); ct != "application/dtab" {
		t.Fatalf("negotiated Content-Type %q", ct)
	}
	r = x.Do("HEAD", "/api/1/dtabs/x", nil, "")
	if r.Status != 200 || r.Header.Get("ETag") != etag {
		t.Fatalf("HEAD: %d ETag %q", r.Status, r.Header.Get("ETag"))
	}

	// 4. update with --version (If-Match), then with the stale one
	upd := map[string]string{"Content-Type": "application/dtab", "If-Match": etag}
	x.Do("PUT", "/api/1/dtabs/x", upd, "/svc=>/#/io.l5d.fs;/host/world=>/srv/world-v2").Want(t, "update", 204, "")
	x.Do("PUT", "/api/1/dtabs/x", upd, "/svc=>/nothing").Want(t, "stale update", 412, "")
	upd["If-Match"] = "not base64!"
	x.Do("PUT", "/api/1/dtabs/x", upd, "/svc=>/nothing").Want(t, "undecodable If-Match", 412, "")
	x.Do("PUT", "/api/1/dtabs/nope", upd, "/svc=>/nothing").Want(t, "If-Match on a missing namespace", 404, "")
	r = x.Do("GET", "/api/1/dtabs/x", json, "")
	r.Want(t, "get after update", 200, `[{"prefix":"/svc","dst":"/#/io.l5d.fs"},{"prefix":"/host/world","dst":"/srv/world-v2"}]`+"\n")
	if r.Header.Get("ETag") == etag {
		t.Fatal("ETag unchanged by an update")
	}
	x.Do("PUT", "/api/1/dtabs/fresh", dtabCT, "/a=>/b").Want(t, "unconditional PUT creates", 204, "")
	x.Do("GET", "/api/1/dtabs/fresh", json, "").Want(t, "get created by PUT", 200, `[{"prefix":"/a","dst":"/b"}]`+"\n")

	// errors with bodies
	x.Do("PUT", "/api/1/dtabs/x", map[string]string{"Content-Type": "application/xml"}, "/a=>/b").
		Want(t, "bad content type", 400, `Invalid Content-Type "application/xml". `)
	r = x.Do("PUT", "/api/1/dtabs/x", dtabCT, "/a=>")
	if r.Status != 400 || !strings.Contains(r.Body, "expected but end of input found") {
		t.Fatalf("unparsable dtab: %d %q", r.Status, r.Body)
	}
	x.Do("POST", "/api/1/dtabs/y", map[string]string{"Content-Type": "application/json"}, `[{"prefix":"/a","dst":"/b"},null]`).
		Want(t, "null dentry", 400, `The dtab contains invalid dentries: [{"prefix":"/a","dst":"/b"},null]`)

	// 6. JSON round trip (namerctl update with a `get --json` file)
	jsonCT := map[string]string{"Content-Type": "application/json;charset=UTF-8"}
	body := `[{"prefix":"/svc","dst":"0.90*/srv/a & 0.10*/srv/b"},{"prefix":"/srv/*","dst":"/#/io.l5d.fs | ~"}]`
	x.Do("PUT", "/api/1/dtabs/j", jsonCT, body).Want(t, "JSON put", 204, "")
	x.Do("GET", "/api/1/dtabs/j", json, "").Want(t, "JSON get", 200, body+"\n")

	// 5. delete (namerctl dtab delete)
	x.Do("DELETE", "/api/1/dtabs/fresh", nil, "").Want(t, "delete", 204, "")
	x.Do("DELETE", "/api/1/dtabs/fresh", nil, "").Want(t, "second delete", 404, "")
	x.Do("GET", "/api/1/dtabs/fresh", json, "").Want(t, "get deleted", 404, "")

	// routing quirks
	x.Do("GET", "/api/1/dtabsfoo", nil, "").Want(t, "dtabsfoo", 404, "")
	x.Do("PATCH", "/api/1/dtabs/x", nil, "").Want(t, "PATCH", 404, "")
	x.Do("DELETE", "/api/1/dtabs/", nil, "").Want(t, "any method lists", 200, `["b","j","x"]`+"\n")
	x.Do("GET", "/api/1/bind", nil, "").Want(t, "bind without namespace", 404, "")
}
