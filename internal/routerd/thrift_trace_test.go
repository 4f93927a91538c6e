package routerd

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/openzipkin/zipkin-go/model"

	_ "github.com/linnet-mesh/linnet/internal/telemetry/zipkin" // io.l5d.zipkin
)

// thriftCollector is a Zipkin v2 HTTP collector on loopback: it keeps the
// JSON span batches io.l5d.zipkin posts to /api/v2/spans.
type thriftCollector struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []model.SpanModel
}

func newThriftCollector(t *testing.T) *thriftCollector {
	t.Helper()
	c := &thriftCollector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/spans" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var batch []model.SpanModel
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.spans = append(c.spans, batch...)
		c.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *thriftCollector) telemetry() string {
	return "telemetry:\n- {kind: io.l5d.zipkin, url: '" + c.srv.URL + "/api/v2/spans', sampleRate: 1.0, batchIntervalMs: 20}\n"
}

// take waits for spans that match keep until there are n, then a few
// batch intervals more, and returns those (removing them).
func (c *thriftCollector) take(t *testing.T, n int, keep func(model.SpanModel) bool) []model.SpanModel {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var out []model.SpanModel
	for settle := false; ; {
		c.mu.Lock()
		out = out[:0]
		for _, s := range c.spans {
			if keep(s) {
				out = append(out, s)
			}
		}
		c.mu.Unlock()
		if len(out) >= n {
			if settle {
				break
			}
			settle = true
			time.Sleep(150 * time.Millisecond)
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d matching spans at the collector after 10s; want %d", len(out), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return out
}

func byKind(spans []model.SpanModel, k model.Kind) []model.SpanModel {
	var out []model.SpanModel
	for _, s := range spans {
		if s.Kind == k {
			out = append(out, s)
		}
	}
	return out
}

func hasAnnotation(s model.SpanModel, v string) bool {
	for _, a := range s.Annotations {
		if a.Value == v {
			return true
		}
	}
	return false
}

// Each thrift call is a server span and a client span per attempt, named
// after the method, reported to a real Zipkin v2 collector: the client
// span is the server span's child in the same trace and carries the
// routing tags; a call the router cannot deliver has a failed server span
// (status 502 and error) and failed client spans, one per attempt.
func TestThriftRouterTracing(t *testing.T) {
	zc := newThriftCollector(t)
	be := startThriftBackend(t, "be", true, "binary")
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	_, deadPort, _ := net.SplitHostPort(closed.Addr().String())
	closed.Close()
	p, err := startFrom(t, `
admin: {port: 0}
`+zc.telemetry()+`
routers:
- protocol: thrift
  label: traced
  thriftMethodInDst: true
  dtab: |
    /svc/echo => /$/inet/127.0.0.1/`+be.port+`;
    /svc/note => /$/inet/127.0.0.1/`+deadPort+`;
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	cl := dialThrift(t, p.ServerAddrs()[0], true, "binary")
	if got, err := cl.call("echo", &echoArgs{Msg: "traced"}); err != nil || !strings.HasPrefix(got, "be:traced") {
		t.Fatalf("echo = %q, %v", got, err)
	}
	spans := zc.take(t, 2, func(s model.SpanModel) bool { return s.Name == "echo" })
	srv, cli := byKind(spans, model.Server), byKind(spans, model.Client)
	if len(srv) != 1 || len(cli) != 1 {
		t.Fatalf("echo: %d server and %d client spans; want 1 and 1: %+v", len(srv), len(cli), spans)
	}
	s, c := srv[0], cli[0]
	if c.TraceID != s.TraceID || c.ParentID == nil || *c.ParentID != s.ID {
		t.Errorf("client span %v (parent %v) is not the child of server span %v in its trace", c.SpanContext, c.ParentID, s.SpanContext)
	}
	for k, want := range map[string]string{"router.label": "traced", "http.req.method": "echo", "http.rsp.status": "200"} {
		if s.Tags[k] != want {
			t.Errorf("server span tag %s = %q; want %q (tags %v)", k, s.Tags[k], want, s.Tags)
		}
	}
	if !strings.Contains(s.Tags["namer.dtab.base"], "/svc/echo=>") {
		t.Errorf("server span namer.dtab.base = %q", s.Tags["namer.dtab.base"])
	}
	for k, want := range map[string]string{
		"namer.path": "/svc/echo", "dst.id": "/$/inet/127.0.0.1/" + be.port, "dst.addr": "127.0.0.1:" + be.port,
	} {
		if c.Tags[k] != want {
			t.Errorf("client span tag %s = %q; want %q (tags %v)", k, c.Tags[k], want, c.Tags)
		}
	}
	if !hasAnnotation(c, "l5d.success") {
		t.Errorf("client span annotations %v lack l5d.success", c.Annotations)
	}
	if s.RemoteEndpoint == nil || s.RemoteEndpoint.IPv4.String() != "127.0.0.1" {
		t.Errorf("server span remote endpoint %v; want the caller", s.RemoteEndpoint)
	}

	// A call to an endpoint that refuses connections: answered with an
	// exception; its spans say it failed.
	_, err = cl.call("note", &echoArgs{Msg: "refused"})
	var ae thrift.TApplicationException
	if !errors.As(err, &ae) {
		t.Fatalf("refused: %v; want an exception", err)
	}
	spans = zc.take(t, 2, func(s model.SpanModel) bool { return s.Name == "note" })
	srv, cli = byKind(spans, model.Server), byKind(spans, model.Client)
	if len(srv) != 1 || len(cli) < 1 {
		t.Fatalf("note: %d server and %d client spans; want 1 and at least 1", len(srv), len(cli))
	}
	if srv[0].Tags["http.rsp.status"] != "502" || srv[0].Tags["error"] == "" {
		t.Errorf("failed call's server span tags %v; want status 502 and error", srv[0].Tags)
	}
	for _, c := range cli {
		if c.TraceID != srv[0].TraceID || !strings.Contains(c.Tags["error"], "connection refused") || !hasAnnotation(c, "l5d.failure") {
			t.Errorf("failed attempt's client span: trace %v tags %v annotations %v; want the server span's trace, error and l5d.failure", c.TraceID, c.Tags, c.Annotations)
		}
	}
}

// A TTwitter caller's trace is joined: the router's server span shares
// the caller's span (as Finagle's do), its client span is the child that
// the endpoint's RequestHeader names, with the call's delegations as its
// dtab.local tag.
func TestThriftRouterTTwitterTracing(t *testing.T) {
	zc := newThriftCollector(t)
	be := startTTBackend(t, "be")
	p, err := startFrom(t, `
admin: {port: 0}
`+zc.telemetry()+`
routers:
- protocol: thrift
  dtab: /svc => /$/inet/127.0.0.1/0;
  servers: [{port: 0}]
  client: {attemptTTwitterUpgrade: true}
`)
	if err != nil {
		t.Fatal(err)
	}
	sampled := true
	const traceID, spanID, parentID = 0x5151, 0x6262, 0x7373
	cl := dialTT(t, p.ServerAddrs()[0])
	delegation := [][2]string{{"/svc", "/$/inet/127.0.0.1/" + be.port}}
	if got, err := cl.call(ttHeader{traceID: traceID, spanID: spanID, parentID: parentID, hasParent: true, sampled: &sampled, delegations: delegation}, "z"); err != nil || got != "be:z" {
		t.Fatalf("call: %q, %v", got, err)
	}
	spans := zc.take(t, 2, func(s model.SpanModel) bool { return s.Name == "echo" })
	srv, cli := byKind(spans, model.Server), byKind(spans, model.Client)
	if len(srv) != 1 || len(cli) != 1 {
		t.Fatalf("%d server and %d client spans; want 1 and 1", len(srv), len(cli))
	}
	s, c := srv[0], cli[0]
	if s.TraceID.Low != traceID || s.ID != spanID || s.ParentID == nil || *s.ParentID != parentID {
		t.Errorf("server span %v parent %v; want the caller's span %#x (parent %#x) in trace %#x", s.SpanContext, s.ParentID, spanID, parentID, traceID)
	}
	if c.TraceID.Low != traceID || c.ParentID == nil || *c.ParentID != spanID {
		t.Errorf("client span %v parent %v; want a child of %#x", c.SpanContext, c.ParentID, spanID)
	}
	if want := "/svc=>/$/inet/127.0.0.1/" + be.port; c.Tags["dtab.local"] != want {
		t.Errorf("client span dtab.local = %q; want %q", c.Tags["dtab.local"], want)
	}
	if got, _ := be.last(t); got.header.traceID != traceID || got.header.spanID != int64(c.ID) || got.header.parentID != spanID {
		t.Errorf("endpoint header %+v; want trace %#x, span %v (the client span), parent %#x", got.header, traceID, c.ID, spanID)
	}
}
