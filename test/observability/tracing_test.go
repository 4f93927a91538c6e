package observability

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// zspan is a Zipkin v2 span as posted to /api/v2/spans.
type zspan struct {
	TraceID       string `json:"traceId"`
	ID            string `json:"id"`
	ParentID      string `json:"parentId"`
	Kind          string `json:"kind"`
	Name          string `json:"name"`
	Shared        bool   `json:"shared"`
	LocalEndpoint struct {
		ServiceName string `json:"serviceName"`
	} `json:"localEndpoint"`
	Tags        map[string]string `json:"tags"`
	Annotations []struct {
		Value string `json:"value"`
	} `json:"annotations"`
}

func (s zspan) String() string {
	return fmt.Sprintf("%s %s %s id=%s parent=%s shared=%v %v", s.LocalEndpoint.ServiceName, s.Kind, s.Name, s.ID, s.ParentID, s.Shared, s.Tags)
}

func (s zspan) annotated(v string) bool {
	for _, a := range s.Annotations {
		if a.Value == v {
			return true
		}
	}
	return false
}

// collector is a Zipkin v2 JSON collector on loopback.
type collector struct {
	url   string
	mu    sync.Mutex
	spans []zspan
	errs  []string
}

func startCollector(t *testing.T) *collector {
	c := &collector{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []zspan
		err := json.NewDecoder(r.Body).Decode(&batch)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/api/v2/spans":
			c.errs = append(c.errs, r.Method+" "+r.URL.Path)
			http.NotFound(w, r)
		case r.Header.Get("Content-Type") != "application/json":
			c.errs = append(c.errs, "Content-Type "+r.Header.Get("Content-Type"))
			http.Error(w, "want JSON", http.StatusUnsupportedMediaType)
		case err != nil:
			c.errs = append(c.errs, "body: "+err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			c.spans = append(c.spans, batch...)
			w.WriteHeader(http.StatusAccepted)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c.url = "http://" + ln.Addr().String() + "/api/v2/spans"
	return c
}

// wait returns the spans once n have arrived (or fails after 15s).
func (c *collector) wait(t *testing.T, n int) []zspan {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c.mu.Lock()
		spans, errs := append([]zspan(nil), c.spans...), append([]string(nil), c.errs...)
		c.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("collector got bad posts: %v", errs)
		}
		if len(spans) >= n {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector got %d spans, want %d:\n%s", len(spans), n, dump(spans))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dump(spans []zspan) string {
	var b strings.Builder
	for _, s := range spans {
		b.WriteString("  " + s.String() + "\n")
	}
	return b.String()
}

// One request of the walkthrough (curl → incoming → hello → outgoing →
// incoming → world) is one trace: three router hops, each with a SERVER
// span and a CLIENT span, chained by parent ids. hello forwards
// l5d-ctx-trace (as the walkthrough's app does), so the outgoing router's
// server span continues the incoming router's client span (shared id,
// as in Finagle), and so on.
func TestOneRequestIsOneTrace(t *testing.T) {
	t.Parallel()
	col := startCollector(t)
	w := startWalkthrough(t, fmt.Sprintf("- kind: io.l5d.zipkin\n  url: %s\n  sampleRate: 1.0\n  batchIntervalMs: 100\n", col.url))
	if code, body := w.get(t, "www.hello.world", nil); code != 200 || body != helloWorld {
		t.Fatalf("got %d %q; want 200 %q\n%s", code, body, helloWorld, w.stderr)
	}
	col.wait(t, 6)
	time.Sleep(300 * time.Millisecond) // a stray seventh span would show up by now
	spans := col.wait(t, 6)
	if len(spans) != 6 {
		t.Fatalf("got %d spans for one request, want 6:\n%s", len(spans), dump(spans))
	}
	trace := spans[0].TraceID
	byKind := map[string][]zspan{}
	for _, s := range spans {
		if s.TraceID != trace {
			t.Errorf("span in another trace (%s, want %s): %s", s.TraceID, trace, s)
		}
		byKind[s.Kind] = append(byKind[s.Kind], s)
	}
	if len(byKind["SERVER"]) != 3 || len(byKind["CLIENT"]) != 3 {
		t.Fatalf("want 3 SERVER and 3 CLIENT spans:\n%s", dump(spans))
	}
	// Walk the chain from the root: server → its client → the next
	// hop's server, which shares the client span's id.
	var root []zspan
	for _, s := range byKind["SERVER"] {
		if s.ParentID == "" {
			root = append(root, s)
		}
	}
	if len(root) != 1 {
		t.Fatalf("want exactly one root span, got %d:\n%s", len(root), dump(spans))
	}
	wantHops := []struct{ router, namerPath, dstID string }{
		{"incoming", "/svc/www.hello.world", "/%/io.l5d.localhost/#/io.l5d.fs/hello"},
		{"outgoing", "/svc/world", fmt.Sprintf("/%%/io.l5d.port/%d/#/io.l5d.fs/world-v1", w.Incoming)},
		{"incoming", "/svc/world", "/%/io.l5d.localhost/#/io.l5d.fs/world-v1"},
	}
	server := root[0]
	for i, hop := range wantHops {
		if server.LocalEndpoint.ServiceName != hop.router {
			t.Errorf("hop %d: server span of %q, want %q: %s", i, server.LocalEndpoint.ServiceName, hop.router, server)
		}
		if i > 0 && !server.Shared {
			t.Errorf("hop %d: server span is not marked shared: %s", i, server)
		}
		if got := server.Tags["namer.path"]; got != hop.namerPath {
			t.Errorf("hop %d: server namer.path %q, want %q", i, got, hop.namerPath)
		}
		if got := server.Tags["dst.id"]; got != hop.dstID {
			t.Errorf("hop %d: server dst.id %q, want %q", i, got, hop.dstID)
		}
		if server.Tags["http.rsp.status"] != "200" || !server.annotated("l5d.success") {
			t.Errorf("hop %d: server span not a success: %s", i, server)
		}
		var client *zspan
		for _, c := range byKind["CLIENT"] {
			if c.ParentID == server.ID {
				if client != nil {
					t.Fatalf("hop %d: two client spans under %s", i, server)
				}
				client = &c
			}
		}
		if client == nil {
			t.Fatalf("hop %d: no client span under %s:\n%s", i, server, dump(spans))
		}
		if client.LocalEndpoint.ServiceName != hop.router || client.Tags["dst.id"] != hop.dstID ||
			client.Tags["namer.path"] != hop.namerPath || client.Tags["dst.addr"] == "" || !client.annotated("l5d.success") {
			t.Errorf("hop %d: client span %s", i, client)
		}
		if i == len(wantHops)-1 {
			break
		}
		var next *zspan
		for _, s := range byKind["SERVER"] {
			if s.ID == client.ID {
				next = &s
			}
		}
		if next == nil {
			t.Fatalf("hop %d: no server span continues client span %s:\n%s", i, client, dump(spans))
		}
		if next.ParentID != client.ParentID {
			t.Errorf("hop %d: shared server span's parent %s, want the client's %s", i+1, next.ParentID, client.ParentID)
		}
		server = *next
	}
	ids := make([]string, 0, len(spans))
	for _, s := range spans {
		ids = append(ids, s.String())
	}
	sort.Strings(ids)
	t.Logf("spans:\n  %s", strings.Join(ids, "\n  "))
}
