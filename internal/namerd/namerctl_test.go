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
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
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

// exchange makes requests as namerctl does.
type exchange = namerdtest.Exchange

const acceptJSON = "application/json"

// TestNamerctlExchanges replays namerctl's HTTP exchanges
// (spec/namerd-api.md §9.3, checklist §9.5) against every storage backend.
func TestNamerctlExchanges(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			namerdtest.NamerctlExchanges(t, startController(t, be.open(t), nil), be.firstETag)
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
			x := exchange{T: t, Base: base}
			list := openStream(t, base+"/api/1/dtabs?watch=true")
			if got := list.next("initial list"); got != "[]" {
				t.Fatalf("initial list %q", got)
			}
			ns := openStream(t, base+"/api/1/dtabs/x?watch=1")
			ns.quiet("absent namespace", 300*time.Millisecond)
			dtabCT := map[string]string{"Content-Type": "application/dtab"}
			x.Do("POST", "/api/1/dtabs/x", dtabCT, "/a=>/b").Want(t, "create", 204, "")
			if got := ns.next("created"); got != `[{"prefix":"/a","dst":"/b"}]` {
				t.Fatalf("created: %q", got)
			}
			if got := list.next("list after create"); got != `["x"]` {
				t.Fatalf("list after create: %q", got)
			}
			x.Do("PUT", "/api/1/dtabs/x", dtabCT, "/a=>/c").Want(t, "update", 204, "")
			if got := ns.next("updated"); got != `[{"prefix":"/a","dst":"/c"}]` {
				t.Fatalf("updated: %q", got)
			}
			// Same content, new version: the rendered document is equal, so it
			// is not repeated.
			x.Do("PUT", "/api/1/dtabs/x", dtabCT, "/a => /c").Want(t, "same content", 204, "")
			ns.quiet("identical document", 300*time.Millisecond)
			x.Do("DELETE", "/api/1/dtabs/x", nil, "").Want(t, "delete", 204, "")
			if got := list.next("list after delete"); got != `[]` {
				t.Fatalf("list after delete: %q", got)
			}
			x.Do("PUT", "/api/1/dtabs/x", dtabCT, "/a=>/d").Want(t, "re-create", 204, "")
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
	x := exchange{T: t, Base: base}
	hello := fmt.Sprintf(`{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":%d,"meta":{}}],"meta":{}},"id":"/#/io.l5d.fs/hello","path":"/"}}`, port)
	inet := fmt.Sprintf(`{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":%d,"meta":{}}],"meta":{}},"id":"/$/inet/127.0.0.1/%d","path":"/"}}`, port, port)
	x.Do("GET", "/api/1/bind/default?path=/svc/hello", nil, "").Want(t, "bind fs", 200, hello+"\n")
	x.Do("GET", "/api/1/bind/default?path=/svc/inet", nil, "").Want(t, "bind inet", 200, inet+"\n")
	x.Do("GET", "/api/1/bind/default?path=/svc/split", nil, "").
		Want(t, "bind split", 200, `{"type":"union","union":[{"weight":0.9,"tree":`+hello+`},{"weight":0.1,"tree":`+inet+`}]}`+"\n")
	x.Do("GET", "/api/1/bind/default?path=/svc/missing", nil, "").Want(t, "bind neg", 200, `{"type":"neg"}`+"\n")
	x.Do("GET", "/api/1/bind/nonexistent?path=/svc/hello", nil, "").Want(t, "absent namespace = empty dtab", 200, `{"type":"neg"}`+"\n")
	x.Do("GET", "/api/1/bind/nonexistent?path=/svc/hello&dtab=/svc=>/%23/io.l5d.fs", nil, "").Want(t, "dtab parameter", 200, hello+"\n")
	x.Do("GET", "/api/1/bind/default?path=/svc/hello&dtab=", nil, "").Want(t, "empty dtab parameter", 200, hello+"\n")
	x.Do("GET", "/api/1/bind/default?path=svc", nil, "").Want(t, "bad path", 400, "Invalid path: svc / '/' expected but 's' found at '[s]vc'")
	x.Do("GET", "/api/1/bind/default", nil, "").Want(t, "missing path", 400, "Missing required parameter: path")

	addr := fmt.Sprintf(`{"type":"bound","addrs":[{"ip":"127.0.0.1","port":%d,"meta":{}}],"meta":{}}`, port)
	x.Do("GET", "/api/1/addr/default?path=/%23/io.l5d.fs/hello", nil, "").Want(t, "addr fs", 200, addr+"\n")
	x.Do("GET", fmt.Sprintf("/api/1/addr/default?path=/$/inet/127.0.0.1/%d", port), nil, "").Want(t, "addr inet", 200, addr+"\n")
	x.Do("GET", "/api/1/addr/default?path=/%25/io.l5d.port/4141/%23/io.l5d.fs/hello", nil, "").Want(t, "addr with transformer marker", 200, addr+"\n")
	x.Do("GET", "/api/1/addr/default?path=/%23/io.l5d.fs/nobody", nil, "").Want(t, "addr neg", 200, `{"type":"neg"}`+"\n")

	x.Do("GET", "/api/1/resolve/default?path=/svc/hello", nil, "").Want(t, "resolve", 200, addr+"\n")
	x.Do("GET", "/api/1/resolve/default?path=/svc/missing", nil, "").Want(t, "resolve neg", 200, `{"type":"neg"}`+"\n")

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
	x := exchange{T: t, Base: base}
	x.Do("GET", "/api/1/delegate/ns1?path=/a", nil, "").
		Want(t, "spec example", 200, `{"type":"delegate","path":"/a","delegate":{"type":"neg","path":"/b","dentry":{"prefix":"/a","dst":"/b"}}}`)
	r := x.Do("GET", "/api/1/delegate/ns1?path=/a&dtab=/b=>/%23/io.l5d.fs/hello", nil, "")
	if r.Status != 200 || !strings.Contains(r.Body, `"type":"leaf"`) || !strings.Contains(r.Body, `"id":"/#/io.l5d.fs/hello"`) || strings.HasSuffix(r.Body, "\n") {
		t.Fatalf("delegate with dtab: %d %q", r.Status, r.Body)
	}
	x.Do("GET", "/api/1/delegate/ns1?path=/a&dtab=/b=>", nil, "").
		Want(t, "bad dtab", 400, "Invalid dtab: simple expected but end of input found at '/b=>[]'")
	x.Do("GET", "/api/1/delegate?path=/a&dtab=/a=>/c", nil, "").
		Want(t, "no namespace", 200, `{"type":"delegate","path":"/a","delegate":{"type":"neg","path":"/c","dentry":{"prefix":"/a","dst":"/c"}}}`)
	x.Do("POST", "/api/1/delegate", map[string]string{"Content-Type": "application/json"}, `{"namespace":"ns1","dtab":"","path":"/a"}`).
		Want(t, "POST", 200, `{"type":"delegate","path":"/a","delegate":{"type":"neg","path":"/b","dentry":{"prefix":"/a","dst":"/b"}}}`)
	x.Do("POST", "/api/1/delegate", map[string]string{"Content-Type": "application/json"}, `{"path":"/a"}`).
		Want(t, "POST without dtab", 400, `Malformed delegation request: {"path":"/a"}`)
	x.Do("POST", "/api/1/delegate", map[string]string{"Content-Type": "text/plain"}, `{}`).Want(t, "POST text", 415, "POST /api/1/delegate needs Content-Type: application/json")
	x.Do("PUT", "/api/1/delegate", nil, "").Want(t, "PUT", 405, "")
}

// Two (or more) writers updating one namespace with the same version:
// exactly one wins, the others get 412 — on every backend.
func TestConcurrentUpdatesOneWins(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			x := exchange{T: t, Base: startController(t, be.open(t), nil)}
			x.Do("POST", "/api/1/dtabs/x", map[string]string{"Content-Type": "application/dtab"}, "/a=>/b").Want(t, "create", 204, "")
			etag := x.Do("GET", "/api/1/dtabs/x", nil, "").Header.Get("ETag")
			const writers = 6
			statuses := make([]int, writers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					statuses[i] = x.Do("PUT", "/api/1/dtabs/x", map[string]string{"Content-Type": "application/dtab", "If-Match": etag}, fmt.Sprintf("/a=>/w%d", i)).Status
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
			x.Do("GET", "/api/1/dtabs/x", map[string]string{"Accept": "application/dtab"}, "").Want(t, "winner stored", 200, fmt.Sprintf("/a=>/w%d\n", won))
		})
	}
}

// A delegation that cannot finish in 2 s answers 503 (spec §3.4).
func TestDelegateTimeout(t *testing.T) {
	namers, fs := testNamers(1)
	fs.SetPending("slow")
	x := exchange{T: t, Base: startController(t, memory.New(nil), namers)}
	start := time.Now()
	x.Do("GET", "/api/1/delegate/ns?path=/%23/io.l5d.fs/slow", nil, "").Want(t, "pending namer", 503, "Request timed out.")
	if d := time.Since(start); d < DelegateTimeout || d > DelegateTimeout+3*time.Second {
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

// A client that does not read holds back the server's writes; it then gets
// the newest state, not a backlog of every change (spec §4).
func TestSlowReaderGetsLatestState(t *testing.T) {
	store := memory.New(nil)
	base := startController(t, store, nil)
	ctx := context.Background()
	big := func(i int) dtab.Dtab {
		var b strings.Builder
		for j := range 200 {
			fmt.Fprintf(&b, "/svc/s%d=>/#/io.l5d.fs/padding-padding-padding-%d;", j, i)
		}
		return dtab.MustParse(b.String())
	}
	if err := store.Put(ctx, "x", big(0)); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"/api/1/dtabs/x?watch=1", nil)
	req.Header.Set("Accept", "application/dtab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	const writes = 1500 // ~15 MB of documents: far more than socket buffers hold
	for i := 1; i <= writes; i++ {
		if err := store.Put(ctx, "x", big(i)); err != nil {
			t.Fatal(err)
		}
	}
	want := big(writes).String()
	r := bufio.NewReaderSize(resp.Body, 1<<20)
	docs := 0
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		docs++
		if strings.TrimSuffix(line, "\n") == want {
			if docs >= writes {
				t.Fatalf("received all %d documents: the stream did not coalesce", docs)
			}
			t.Logf("%d writes arrived as %d documents", writes+1, docs)
			return
		}
	}
	t.Fatalf("the latest dtab did not arrive (%d documents read)", docs)
}
