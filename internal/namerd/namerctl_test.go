package namerd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/storage/etcd"
	"github.com/linnet-mesh/linnet/internal/storage/etcd/etcdtest"
	"github.com/linnet-mesh/linnet/internal/storage/file"
	"github.com/linnet-mesh/linnet/internal/storage/memory"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// backends are the stores every namerctl exchange runs against.
var backends = []struct {
	name string
	open func(t *testing.T) storage.Store
	// firstETag is the ETag of a freshly created dtab, when the backend
	// promises one.
	firstETag string
}{
	{"memory", func(*testing.T) storage.Store { return memory.New(nil) }, "AAAAAAAAAAE="},
	{"file", func(t *testing.T) storage.Store {
		s, err := file.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, ""},
	{"etcd", func(t *testing.T) storage.Store {
		srv := etcdtest.Start(t)
		s, err := etcd.Open(etcd.Options{Endpoints: []string{srv.Endpoint()}, PathPrefix: "/namerd/dtabs"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, ""},
}

// testNamers mounts a static namer at /#/io.l5d.fs knowing "hello".
func testNamers(port int) ([]naming.MountedNamer, *naming.StaticNamer) {
	prefix := dtab.Path{"#", "io.l5d.fs"}
	n := naming.NewStaticNamer(prefix, map[string][]naming.Address{
		"hello": {{Host: "127.0.0.1", Port: port, Weight: 1}},
	})
	return []naming.MountedNamer{{Prefix: prefix, Namer: n}}, n
}

func startController(t *testing.T, s storage.Store, namers []naming.MountedNamer) string {
	t.Helper()
	c := NewController(s, namers, telemetry.NewRegistry().Scope(), nil)
	srv := httptest.NewServer(c)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		s.Close()
	})
	return srv.URL
}

// exchange is one HTTP request made exactly as namerctl makes it.
type exchange struct {
	t    *testing.T
	base string
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (x exchange) do(method, path string, header map[string]string, body string) reply {
	x.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, x.base+path, rd)
	if err != nil {
		x.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		x.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func (r reply) want(t *testing.T, what string, status int, body string) {
	t.Helper()
	if r.status != status || r.body != body {
		t.Fatalf("%s: got %d %q, want %d %q", what, r.status, r.body, status, body)
	}
}

const acceptJSON = "application/json"

// TestNamerctlExchanges replays namerctl's HTTP exchanges
// (spec/namerd-api.md §9.3, checklist §9.5) against every storage backend.
func TestNamerctlExchanges(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			_, port := startBackend(t)
			namers, _ := testNamers(port)
			x := exchange{t, startController(t, be.open(t), namers)}
			json := map[string]string{"Accept": acceptJSON}

			// 1. list (namerctl dtab list)
			r := x.do("GET", "/api/1/dtabs", json, "")
			r.want(t, "empty list", 200, "[]\n")
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("list Content-Type %q", ct)
			}

			// 2. create from a file sent verbatim (namerctl dtab create x file)
			file := "\n  # routing for x\n  /svc => /#/io.l5d.fs ;\n\t/host/world=>/srv/world-v1;\n"
			dtabCT := map[string]string{"Content-Type": "application/dtab"}
			x.do("POST", "/api/1/dtabs/x", dtabCT, file).want(t, "create", 204, "")
			x.do("POST", "/api/1/dtabs/x", dtabCT, file).want(t, "second create", 409, "")
			x.do("POST", "/api/1/dtabs/b", dtabCT, "/a=>/b").want(t, "create b", 204, "")
			x.do("GET", "/api/1/dtabs", json, "").want(t, "sorted list", 200, `["b","x"]`+"\n")

			// 3. get (namerctl dtab get x)
			r = x.do("GET", "/api/1/dtabs/x", json, "")
			r.want(t, "get", 200, `[{"prefix":"/svc","dst":"/#/io.l5d.fs"},{"prefix":"/host/world","dst":"/srv/world-v1"}]`+"\n")
			etag := r.header.Get("ETag")
			if etag == "" || strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") {
				t.Fatalf("ETag %q: want a bare base64 token", etag)
			}
			if be.firstETag != "" && etag != be.firstETag {
				t.Fatalf("ETag %q, want %q", etag, be.firstETag)
			}
			if _, err := storage.ParseVersion(etag); err != nil {
				t.Fatalf("ETag %q is not base64: %v", etag, err)
			}
			r = x.do("GET", "/api/1/dtabs/x", map[string]string{"Accept": "application/dtab;q=0.9, application/json"}, "")
			r.want(t, "get as dtab", 200, "/svc=>/#/io.l5d.fs;/host/world=>/srv/world-v1\n")
			if ct := r.header.Get("Content-Type"); ct != "application/dtab" {
				t.Fatalf("negotiated Content-Type %q", ct)
			}
			r = x.do("HEAD", "/api/1/dtabs/x", nil, "")
			if r.status != 200 || r.header.Get("ETag") != etag {
				t.Fatalf("HEAD: %d ETag %q", r.status, r.header.Get("ETag"))
			}

			// 4. update with --version (If-Match), then with the stale one
			upd := map[string]string{"Content-Type": "application/dtab", "If-Match": etag}
			x.do("PUT", "/api/1/dtabs/x", upd, "/svc=>/#/io.l5d.fs;/host/world=>/srv/world-v2").want(t, "update", 204, "")
			x.do("PUT", "/api/1/dtabs/x", upd, "/svc=>/nothing").want(t, "stale update", 412, "")
			upd["If-Match"] = "not base64!"
			x.do("PUT", "/api/1/dtabs/x", upd, "/svc=>/nothing").want(t, "undecodable If-Match", 412, "")
			x.do("PUT", "/api/1/dtabs/nope", upd, "/svc=>/nothing").want(t, "If-Match on a missing namespace", 404, "")
			r = x.do("GET", "/api/1/dtabs/x", json, "")
			r.want(t, "get after update", 200, `[{"prefix":"/svc","dst":"/#/io.l5d.fs"},{"prefix":"/host/world","dst":"/srv/world-v2"}]`+"\n")
			if r.header.Get("ETag") == etag {
				t.Fatal("ETag unchanged by an update")
			}
			x.do("PUT", "/api/1/dtabs/fresh", dtabCT, "/a=>/b").want(t, "unconditional PUT creates", 204, "")
			x.do("GET", "/api/1/dtabs/fresh", json, "").want(t, "get created by PUT", 200, `[{"prefix":"/a","dst":"/b"}]`+"\n")

			// errors with bodies
			x.do("PUT", "/api/1/dtabs/x", map[string]string{"Content-Type": "application/xml"}, "/a=>/b").
				want(t, "bad content type", 400, `Invalid Content-Type "application/xml". `)
			r = x.do("PUT", "/api/1/dtabs/x", dtabCT, "/a=>")
			if r.status != 400 || !strings.Contains(r.body, "expected but end of input found") {
				t.Fatalf("unparsable dtab: %d %q", r.status, r.body)
			}
			x.do("POST", "/api/1/dtabs/y", map[string]string{"Content-Type": "application/json"}, `[{"prefix":"/a","dst":"/b"},null]`).
				want(t, "null dentry", 400, `The dtab contains invalid dentries: [{"prefix":"/a","dst":"/b"},null]`)

			// 6. JSON round trip (namerctl update with a `get --json` file)
			jsonCT := map[string]string{"Content-Type": "application/json;charset=UTF-8"}
			body := `[{"prefix":"/svc","dst":"0.90*/srv/a & 0.10*/srv/b"},{"prefix":"/srv/*","dst":"/#/io.l5d.fs | ~"}]`
			x.do("PUT", "/api/1/dtabs/j", jsonCT, body).want(t, "JSON put", 204, "")
			x.do("GET", "/api/1/dtabs/j", json, "").want(t, "JSON get", 200, body+"\n")

			// 5. delete (namerctl dtab delete)
			x.do("DELETE", "/api/1/dtabs/fresh", nil, "").want(t, "delete", 204, "")
			x.do("DELETE", "/api/1/dtabs/fresh", nil, "").want(t, "second delete", 404, "")
			x.do("GET", "/api/1/dtabs/fresh", json, "").want(t, "get deleted", 404, "")

			// routing quirks
			x.do("GET", "/api/1/dtabsfoo", nil, "").want(t, "dtabsfoo", 404, "")
			x.do("PATCH", "/api/1/dtabs/x", nil, "").want(t, "PATCH", 404, "")
			x.do("DELETE", "/api/1/dtabs/", nil, "").want(t, "any method lists", 200, `["b","j","x"]`+"\n")
			x.do("GET", "/api/1/bind", nil, "").want(t, "bind without namespace", 404, "")
		})
	}
}

// startBackend runs a loopback HTTP server and returns it and its port.
func startBackend(t *testing.T) (*httptest.Server, int) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	return srv, port
}

// streamReader reads newline-terminated documents from a watch response.
type streamReader struct {
	t      *testing.T
	resp   *http.Response
	lines  chan string
	cancel context.CancelFunc
}

func openStream(t *testing.T, url string) *streamReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Accept", acceptJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	s := &streamReader{t: t, resp: resp, lines: make(chan string, 100), cancel: cancel}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *streamReader) close() { s.cancel(); s.resp.Body.Close() }

func (s *streamReader) next(what string) string {
	s.t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			s.t.Fatalf("%s: stream ended", what)
		}
		return l
	case <-time.After(10 * time.Second):
		s.t.Fatalf("%s: no document within 10s", what)
	}
	return ""
}

func (s *streamReader) quiet(what string, d time.Duration) {
	s.t.Helper()
	select {
	case l := <-s.lines:
		s.t.Fatalf("%s: unexpected document %q", what, l)
	case <-time.After(d):
	}
}

// 7. watch streams (§2.2, §2.3, §4).
func TestWatchDtab(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			base := startController(t, be.open(t), nil)
			x := exchange{t, base}
			list := openStream(t, base+"/api/1/dtabs?watch=true")
			if got := list.next("initial list"); got != "[]" {
				t.Fatalf("initial list %q", got)
			}
			ns := openStream(t, base+"/api/1/dtabs/x?watch=1")
			ns.quiet("absent namespace", 300*time.Millisecond)
			dtabCT := map[string]string{"Content-Type": "application/dtab"}
			x.do("POST", "/api/1/dtabs/x", dtabCT, "/a=>/b").want(t, "create", 204, "")
			if got := ns.next("created"); got != `[{"prefix":"/a","dst":"/b"}]` {
				t.Fatalf("created: %q", got)
			}
			if got := list.next("list after create"); got != `["x"]` {
				t.Fatalf("list after create: %q", got)
			}
			x.do("PUT", "/api/1/dtabs/x", dtabCT, "/a=>/c").want(t, "update", 204, "")
			if got := ns.next("updated"); got != `[{"prefix":"/a","dst":"/c"}]` {
				t.Fatalf("updated: %q", got)
			}
			// Same content, new version: the rendered document is equal, so it
			// is not repeated.
			x.do("PUT", "/api/1/dtabs/x", dtabCT, "/a => /c").want(t, "same content", 204, "")
			ns.quiet("identical document", 300*time.Millisecond)
			x.do("DELETE", "/api/1/dtabs/x", nil, "").want(t, "delete", 204, "")
			if got := list.next("list after delete"); got != `[]` {
				t.Fatalf("list after delete: %q", got)
			}
			x.do("PUT", "/api/1/dtabs/x", dtabCT, "/a=>/d").want(t, "re-create", 204, "")
			if got := ns.next("re-created"); got != `[{"prefix":"/a","dst":"/d"}]` {
				t.Fatalf("re-created: %q", got)
			}
		})
	}
}

// 8. bind/addr/resolve on a dtab pointing at namers and /$/inet (§3, §6).
func TestResolution(t *testing.T) {
	_, port := startBackend(t)
	namers, fs := testNamers(port)
	base := startController(t, memory.New(map[string]dtab.Dtab{
		"default": dtab.MustParse(fmt.Sprintf("/svc=>/#/io.l5d.fs;/svc/inet=>/$/inet/127.0.0.1/%d;/svc/split=>0.9*/#/io.l5d.fs/hello & 0.1*/$/inet/127.0.0.1/%d", port, port)),
	}), namers)
	x := exchange{t, base}
	hello := fmt.Sprintf(`{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":%d,"meta":{}}],"meta":{}},"id":"/#/io.l5d.fs/hello","path":"/"}}`, port)
	inet := fmt.Sprintf(`{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":%d,"meta":{}}],"meta":{}},"id":"/$/inet/127.0.0.1/%d","path":"/"}}`, port, port)
	x.do("GET", "/api/1/bind/default?path=/svc/hello", nil, "").want(t, "bind fs", 200, hello+"\n")
	x.do("GET", "/api/1/bind/default?path=/svc/inet", nil, "").want(t, "bind inet", 200, inet+"\n")
	x.do("GET", "/api/1/bind/default?path=/svc/split", nil, "").
		want(t, "bind split", 200, `{"type":"union","union":[{"weight":0.9,"tree":`+hello+`},{"weight":0.1,"tree":`+inet+`}]}`+"\n")
	x.do("GET", "/api/1/bind/default?path=/svc/missing", nil, "").want(t, "bind neg", 200, `{"type":"neg"}`+"\n")
	x.do("GET", "/api/1/bind/nonexistent?path=/svc/hello", nil, "").want(t, "absent namespace = empty dtab", 200, `{"type":"neg"}`+"\n")
	x.do("GET", "/api/1/bind/nonexistent?path=/svc/hello&dtab=/svc=>/%23/io.l5d.fs", nil, "").want(t, "dtab parameter", 200, hello+"\n")
	x.do("GET", "/api/1/bind/default?path=/svc/hello&dtab=", nil, "").want(t, "empty dtab parameter", 200, hello+"\n")
	x.do("GET", "/api/1/bind/default?path=svc", nil, "").want(t, "bad path", 400, "Invalid path: svc / '/' expected but 's' found at '[s]vc'")
	x.do("GET", "/api/1/bind/default", nil, "").want(t, "missing path", 400, "Missing required parameter: path")

	addr := fmt.Sprintf(`{"type":"bound","addrs":[{"ip":"127.0.0.1","port":%d,"meta":{}}],"meta":{}}`, port)
	x.do("GET", "/api/1/addr/default?path=/%23/io.l5d.fs/hello", nil, "").want(t, "addr fs", 200, addr+"\n")
	x.do("GET", fmt.Sprintf("/api/1/addr/default?path=/$/inet/127.0.0.1/%d", port), nil, "").want(t, "addr inet", 200, addr+"\n")
	x.do("GET", "/api/1/addr/default?path=/%25/io.l5d.port/4141/%23/io.l5d.fs/hello", nil, "").want(t, "addr with transformer marker", 200, addr+"\n")
	x.do("GET", "/api/1/addr/default?path=/%23/io.l5d.fs/nobody", nil, "").want(t, "addr neg", 200, `{"type":"neg"}`+"\n")

	x.do("GET", "/api/1/resolve/default?path=/svc/hello", nil, "").want(t, "resolve", 200, addr+"\n")
	x.do("GET", "/api/1/resolve/default?path=/svc/missing", nil, "").want(t, "resolve neg", 200, `{"type":"neg"}`+"\n")

	// Streams follow namer changes.
	s := openStream(t, base+"/api/1/addr/default?path=/%23/io.l5d.fs/hello&watch=1")
	if got := s.next("initial addr"); got != addr {
		t.Fatalf("initial addr %q", got)
	}
	fs.Set("hello", naming.Address{Host: "127.0.0.2", Port: 81, Weight: 1}, naming.Address{Host: "127.0.0.1", Port: 80, Weight: 2})
	want := `{"type":"bound","addrs":[{"ip":"127.0.0.1","port":80,"meta":{"endpoint_addr_weight":2}},{"ip":"127.0.0.2","port":81,"meta":{}}],"meta":{}}`
	if got := s.next("changed addr"); got != want {
		t.Fatalf("changed addr:\n got %s\nwant %s", got, want)
	}
}

// The bind stream follows the namespace dtab: a change in namerd is the
// next document.
func TestBindStreamFollowsDtab(t *testing.T) {
	_, port := startBackend(t)
	namers, _ := testNamers(port)
	store := memory.New(map[string]dtab.Dtab{"default": dtab.MustParse("/svc=>/#/io.l5d.fs")})
	base := startController(t, store, namers)
	s := openStream(t, base+"/api/1/bind/default?path=/svc/hello&watch=true&dtab=")
	if got := s.next("initial"); !strings.Contains(got, `"id":"/#/io.l5d.fs/hello"`) {
		t.Fatalf("initial %q", got)
	}
	if err := store.Put(context.Background(), "default", dtab.MustParse(fmt.Sprintf("/svc=>/$/inet/127.0.0.1/%d", port))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got := s.next("after dtab change"); !strings.Contains(got, fmt.Sprintf(`"id":"/$/inet/127.0.0.1/%d","path":"/hello"`, port)) {
		t.Fatalf("after dtab change %q", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("change took %v to reach the stream", d)
	}
}

func TestDelegate(t *testing.T) {
	_, port := startBackend(t)
	namers, _ := testNamers(port)
	base := startController(t, memory.New(map[string]dtab.Dtab{"ns1": dtab.MustParse("/a=>/b")}), namers)
	x := exchange{t, base}
	x.do("GET", "/api/1/delegate/ns1?path=/a", nil, "").
		want(t, "spec example", 200, `{"type":"delegate","path":"/a","delegate":{"type":"neg","path":"/b","dentry":{"prefix":"/a","dst":"/b"}}}`)
	r := x.do("GET", "/api/1/delegate/ns1?path=/a&dtab=/b=>/%23/io.l5d.fs/hello", nil, "")
	if r.status != 200 || !strings.Contains(r.body, `"type":"leaf"`) || !strings.Contains(r.body, `"id":"/#/io.l5d.fs/hello"`) || strings.HasSuffix(r.body, "\n") {
		t.Fatalf("delegate with dtab: %d %q", r.status, r.body)
	}
	x.do("GET", "/api/1/delegate/ns1?path=/a&dtab=/b=>", nil, "").
		want(t, "bad dtab", 400, "Invalid dtab: simple expected but end of input found at '/b=>[]'")
	x.do("GET", "/api/1/delegate?path=/a&dtab=/a=>/c", nil, "").
		want(t, "no namespace", 200, `{"type":"delegate","path":"/a","delegate":{"type":"neg","path":"/c","dentry":{"prefix":"/a","dst":"/c"}}}`)
	x.do("POST", "/api/1/delegate", map[string]string{"Content-Type": "application/json"}, `{"namespace":"ns1","dtab":"","path":"/a"}`).
		want(t, "POST", 200, `{"type":"delegate","path":"/a","delegate":{"type":"neg","path":"/b","dentry":{"prefix":"/a","dst":"/b"}}}`)
	x.do("POST", "/api/1/delegate", map[string]string{"Content-Type": "application/json"}, `{"path":"/a"}`).
		want(t, "POST without dtab", 400, `Malformed delegation request: {"path":"/a"}`)
	x.do("POST", "/api/1/delegate", map[string]string{"Content-Type": "text/plain"}, `{}`).want(t, "POST text", 415, "POST /api/1/delegate needs Content-Type: application/json")
	x.do("PUT", "/api/1/delegate", nil, "").want(t, "PUT", 405, "")
}

// Two (or more) writers updating one namespace with the same version:
// exactly one wins, the others get 412 — on every backend.
func TestConcurrentUpdatesOneWins(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			x := exchange{t, startController(t, be.open(t), nil)}
			x.do("POST", "/api/1/dtabs/x", map[string]string{"Content-Type": "application/dtab"}, "/a=>/b").want(t, "create", 204, "")
			etag := x.do("GET", "/api/1/dtabs/x", nil, "").header.Get("ETag")
			const writers = 6
			statuses := make([]int, writers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					statuses[i] = x.do("PUT", "/api/1/dtabs/x", map[string]string{"Content-Type": "application/dtab", "If-Match": etag}, fmt.Sprintf("/a=>/w%d", i)).status
				})
			}
			close(start)
			wg.Wait()
			won := -1
			for i, s := range statuses {
				switch {
				case s == 204 && won >= 0:
					t.Fatalf("writers %d and %d both won: %v", won, i, statuses)
				case s == 204:
					won = i
				case s != 412:
					t.Fatalf("writer %d: status %d, want 204 or 412", i, s)
				}
			}
			if won < 0 {
				t.Fatalf("no writer won: %v", statuses)
			}
			x.do("GET", "/api/1/dtabs/x", map[string]string{"Accept": "application/dtab"}, "").want(t, "winner stored", 200, fmt.Sprintf("/a=>/w%d\n", won))
		})
	}
}

// A delegation that cannot finish in 2 s answers 503 (spec §3.4).
func TestDelegateTimeout(t *testing.T) {
	namers, fs := testNamers(1)
	fs.SetPending("slow")
	x := exchange{t, startController(t, memory.New(nil), namers)}
	start := time.Now()
	x.do("GET", "/api/1/delegate/ns?path=/%23/io.l5d.fs/slow", nil, "").want(t, "pending namer", 503, "Request timed out.")
	if d := time.Since(start); d < DelegateTimeout || d > DelegateTimeout+time.Second {
		t.Fatalf("answered after %v, want about %v", d, DelegateTimeout)
	}
}

// When a watching client goes away, the server releases what it watched.
func TestStreamsReleaseWatches(t *testing.T) {
	namers, fs := testNamers(1)
	base := startController(t, memory.New(map[string]dtab.Dtab{"default": dtab.MustParse("/svc=>/#/io.l5d.fs")}), namers)
	for _, path := range []string{
		"/api/1/bind/default?path=/svc/hello&watch=1",
		"/api/1/addr/default?path=/%23/io.l5d.fs/hello&watch=1",
		"/api/1/resolve/default?path=/svc/hello&watch=1",
	} {
		s := openStream(t, base+path)
		s.next(path)
		if fs.Subscribers() == 0 {
			t.Fatalf("%s: nothing watched while streaming", path)
		}
		s.close()
		deadline := time.Now().Add(5 * time.Second)
		for fs.Subscribers() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d namer watches left after the client left", path, fs.Subscribers())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
