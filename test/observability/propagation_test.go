package observability

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"

	"github.com/linnet-mesh/linnet/internal/telemetry/tracing"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// headerEcho is a backend answering with the request headers it got, as JSON.
func headerEcho(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(r.Header)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// runRouter runs `linnet router -` with cfg and waits for its admin.
func runRouter(t *testing.T, cfg string, admin int) {
	t.Helper()
	out := &linnettest.Buffer{}
	cmd := exec.Command(linnettest.Bin(t), "router", "-")
	cmd.Stdin = strings.NewReader(cfg)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/admin/ping", admin))
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("linnet exited: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("linnet admin did not answer: %v\n%s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// through sends GET / with Host echo and hdr to port and returns the
// headers the backend received.
func through(t *testing.T, port int, hdr map[string]string) http.Header {
	t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	req.Host = "echo"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var h http.Header
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return h
}

func ctxTrace(t *testing.T, h http.Header) model.SpanContext {
	t.Helper()
	sc, err := tracing.DecodeCtxTrace(h.Get("l5d-ctx-trace"))
	if err != nil {
		t.Fatalf("backend got l5d-ctx-trace %q: %v", h.Get("l5d-ctx-trace"), err)
	}
	return sc
}

// Trace context crosses a trusted server, is refused by a clearContext
// one (a client cannot join or force-sample a trace there), l5d-sample
// samples a new trace although the telemeter's rate is 0, and the
// io.l5d.zipkin propagator speaks B3 instead of l5d-ctx-trace.
func TestTracePropagation(t *testing.T) {
	t.Parallel()
	col := startCollector(t)
	echo := headerEcho(t)
	admin, trusted, untrusted, b3port := linnettest.FreePort(t), linnettest.FreePort(t), linnettest.FreePort(t), linnettest.FreePort(t)
	cfg := fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
telemetry:
- kind: io.l5d.zipkin
  url: %s
  sampleRate: 0.0
  batchIntervalMs: 50
routers:
- protocol: http
  label: web
  dtab: /svc/echo => /$/inet/127.0.0.1/%d;
  servers:
  - {ip: 127.0.0.1, port: %d}
  - {ip: 127.0.0.1, port: %d, clearContext: true}
- protocol: http
  label: b3
  tracePropagator: {kind: io.l5d.zipkin}
  dtab: /svc/echo => /$/inet/127.0.0.1/%d;
  servers:
  - {ip: 127.0.0.1, port: %d}
`, admin, col.url, echo, trusted, untrusted, echo, b3port)
	runRouter(t, cfg, admin)

	yes := true
	in := model.SpanContext{TraceID: model.TraceID{Low: 0x1234}, ID: 0x77, Sampled: &yes}
	inHdr := map[string]string{"l5d-ctx-trace": tracing.EncodeCtxTrace(in)}

	// Trusted: the router continues the caller's trace (sampled, as the
	// caller decided), and l5d-reqid is the trace id.
	h := through(t, trusted, inHdr)
	sc := ctxTrace(t, h)
	if sc.TraceID != in.TraceID || sc.ParentID == nil || *sc.ParentID != in.ID || sc.Sampled == nil || !*sc.Sampled {
		t.Errorf("trusted server: backend got %+v; want a child of %+v", sc, in)
	}
	if got := h.Get("l5d-reqid"); got != "0000000000001234" {
		t.Errorf("l5d-reqid %q, want the trace id", got)
	}
	spans := col.wait(t, 2) // server + client span of the sampled trace
	for _, s := range spans {
		if s.TraceID != "0000000000001234" {
			t.Errorf("exported span of another trace: %s", s)
		}
	}

	// clearContext: a new trace, and the caller's sampling decision is
	// ignored (the telemeter's rate, 0, applies).
	h = through(t, untrusted, map[string]string{"l5d-ctx-trace": tracing.EncodeCtxTrace(in), "l5d-sample": "1.0"})
	sc = ctxTrace(t, h)
	if sc.TraceID == in.TraceID || sc.Sampled == nil || *sc.Sampled {
		t.Errorf("clearContext server: backend got %+v; want a new, unsampled trace", sc)
	}

	// l5d-sample on a trusted server samples a new trace.
	h = through(t, trusted, map[string]string{"l5d-sample": "1.0"})
	sc = ctxTrace(t, h)
	if sc.Sampled == nil || !*sc.Sampled {
		t.Errorf("l5d-sample: 1.0: backend got %+v; want sampled", sc)
	}
	spans = col.wait(t, 4)
	var n int
	for _, s := range spans {
		if s.TraceID == sc.TraceID.String() {
			n++
		}
	}
	if n != 2 {
		t.Errorf("l5d-sample: 1.0: %d spans exported for the trace, want 2:\n%s", n, dump(spans))
	}

	// B3: x-b3-* out, no l5d-ctx-trace; the caller's B3 context is continued.
	h = through(t, b3port, map[string]string{"X-B3-TraceId": "00000000000000000000000000000abc", "X-B3-SpanId": "0000000000000def", "X-B3-Sampled": "0"})
	if h.Get("l5d-ctx-trace") != "" {
		t.Errorf("b3 router wrote l5d-ctx-trace %q", h.Get("l5d-ctx-trace"))
	}
	if got := h.Get("X-B3-Traceid"); !strings.HasSuffix(got, "abc") {
		t.Errorf("x-b3-traceid %q, want the caller's trace", got)
	}
	if got := h.Get("X-B3-Parentspanid"); got != "0000000000000def" {
		t.Errorf("x-b3-parentspanid %q, want the caller's span", got)
	}
	time.Sleep(200 * time.Millisecond)
	if spans := col.wait(t, 4); len(spans) != 4 {
		t.Errorf("unsampled requests exported spans:\n%s", dump(spans))
	}
}

// An h2 (prior-knowledge h2c) router records the same server and client
// spans, and the endpoint sees the client span in l5d-ctx-trace.
func TestH2RouterSpans(t *testing.T) {
	t.Parallel()
	col := startCollector(t)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &http.Server{Protocols: &protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "want HTTP/2, got "+r.Proto, http.StatusHTTPVersionNotSupported)
			return
		}
		_ = json.NewEncoder(w).Encode(r.Header)
	})}
	go be.Serve(ln)
	t.Cleanup(func() { be.Close() })
	admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
	runRouter(t, fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
telemetry:
- kind: io.l5d.zipkin
  url: %s
  sampleRate: 1.0
  batchIntervalMs: 50
routers:
- protocol: h2
  label: grpc
  identifier: {kind: io.l5d.header.token, header: ":authority"}
  dtab: /svc/echo => /$/inet/%s;
  servers:
  - {ip: 127.0.0.1, port: %d}
`, admin, col.url, strings.Replace(ln.Addr().String(), ":", "/", 1), port), admin)
	client := &http.Client{Transport: &http.Transport{Protocols: &protos}}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	req.Host = "echo"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("%s %d: %s", resp.Proto, resp.StatusCode, b)
	}
	var h http.Header
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	sent := ctxTrace(t, h)
	spans := col.wait(t, 2)
	var server, client2 *zspan
	for i, s := range spans {
		switch s.Kind {
		case "SERVER":
			server = &spans[i]
		case "CLIENT":
			client2 = &spans[i]
		}
	}
	if len(spans) != 2 || server == nil || client2 == nil {
		t.Fatalf("want one server and one client span:\n%s", dump(spans))
	}
	if client2.ParentID != server.ID || client2.TraceID != server.TraceID || server.LocalEndpoint.ServiceName != "grpc" ||
		client2.Tags["namer.path"] != "/svc/echo" || client2.ID != sent.ID.String() || sent.TraceID.String() != server.TraceID {
		t.Errorf("spans do not chain with what the endpoint got (%+v):\n%s", sent, dump(spans))
	}
}
