package http1

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// testProxy is a router server in front of named loopback backends: the
// dtab /svc => /#/test routes Host: <name> to the static namer's <name>.
type testProxy struct {
	URL     string
	handler *Handler
	namer   *naming.StaticNamer
	reg     *telemetry.Registry
	router  *router.Router
}

type proxyOpts struct {
	clear    bool
	maxConc  int
	ident    proxy.Identifier
	dtabText string
}

func addrOf(t *testing.T, rawURL string) naming.Address {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(u.Host)
	p, _ := strconv.Atoi(port)
	return naming.Address{Host: host, Port: p, Weight: 1}
}

func newTestProxy(t *testing.T, backends map[string]string, o proxyOpts) *testProxy {
	t.Helper()
	names := map[string][]naming.Address{}
	for name, u := range backends {
		if u == "" {
			names[name] = nil
			continue
		}
		names[name] = []naming.Address{addrOf(t, u)}
	}
	namer := naming.NewStaticNamer(dtab.Path{"#", "test"}, names)
	interp := naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "test"}, Namer: namer}})
	if o.dtabText == "" {
		o.dtabText = "/svc => /#/test;"
	}
	reg := telemetry.NewRegistry()
	rt := router.New(router.Params{
		Label:          "test",
		Dtab:           dtab.MustParse(o.dtabText),
		Interpreter:    interp,
		BindingTimeout: 2 * time.Second,
		Scope:          telemetry.RouterScope(reg.Scope(), "test"),
		NewTransport: func(addr string) router.Transport {
			return NewClient(addr, TransportOptions{})
		},
	})
	ident := o.ident
	if ident == nil {
		id, _ := (&HeaderTokenConfig{Header: "Host"}).NewIdentifier(proxy.IdentifierEnv{DstPrefix: dtab.Path{"svc"}})
		ident = id
	}
	h := NewHandler(HandlerParams{
		Router:                rt,
		Identifier:            ident,
		ClearContext:          o.clear,
		MaxConcurrentRequests: o.maxConc,
		Scope:                 telemetry.ServerScope(telemetry.RouterScope(reg.Scope(), "test"), "127.0.0.1", 0),
	})
	// The router's own server: the fast path, handing connections it does
	// not handle to net/http.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, &http.Server{}, nil)
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		rt.Close()
	})
	return &testProxy{URL: "http://" + ln.Addr().String(), handler: h, namer: namer, reg: reg, router: rt}
}

func (p *testProxy) metric(name string) int64 {
	var v int64 = -1
	p.reg.Each(func(m telemetry.Metric) {
		if m.Name == name && m.Kind == telemetry.KindCounter {
			v = m.Counter.Value()
		}
	})
	return v
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

func newReq(t *testing.T, method, u, host string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	return req
}

func TestForwardHeadersAndHopByHop(t *testing.T) {
	t.Parallel()
	var got http.Header
	var gotHost string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		gotHost = r.Host
		w.Header().Set("Connection", "X-Hop-Resp")
		w.Header().Set("X-Hop-Resp", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		w.Header().Set("Trailer", "X-Trailer")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "body")
		w.Header().Set("X-Trailer", "trailer-value")
	}))
	defer backend.Close()
	p := newTestProxy(t, map[string]string{"hello": backend.URL}, proxyOpts{})

	req := newReq(t, "GET", p.URL+"/a/b?x=1", "hello", nil)
	req.Header.Set("Connection", "X-Hop-Req")
	req.Header.Set("X-Hop-Req", "gone")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Te", "trailers")
	req.Header.Set("X-Custom", "kept")
	req.Header.Set("l5d-ctx-thing", "x")
	req.Header.Set("l5d-dtab", "/foo=>/bar")
	resp, body := do(t, req)

	if resp.StatusCode != http.StatusTeapot || body != "body" {
		t.Fatalf("got %d %q; want 418 \"body\"", resp.StatusCode, body)
	}
	if gotHost != "hello" {
		t.Errorf("backend Host = %q; want hello", gotHost)
	}
	for _, k := range []string{"X-Hop-Req", "Proxy-Authorization", "Connection"} {
		if v, ok := got[k]; ok {
			t.Errorf("backend saw hop-by-hop header %s: %q", k, v)
		}
	}
	want := map[string]string{
		"X-Custom":        "kept",
		"Te":              "trailers",
		"Via":             "1.1 linkerd",
		"L5d-Dst-Service": "/svc/hello",
		"L5d-Dst-Client":  "/#/test/hello",
		"L5d-Ctx-Dtab":    "/foo=>/bar",
		"L5d-Ctx-Thing":   "x",
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("backend header %s = %q; want %q", k, got.Get(k), v)
		}
	}
	if v := got.Get("L5d-Reqid"); len(v) != 16 {
		t.Errorf("l5d-reqid = %q; want 16 hex digits", v)
	}
	if _, ok := proxy.ParseTrace(got.Get("L5d-Ctx-Trace")); !ok {
		t.Errorf("l5d-ctx-trace = %q does not parse", got.Get("L5d-Ctx-Trace"))
	}
	if v, ok := got["L5d-Dtab"]; ok {
		t.Errorf("backend saw l5d-dtab %q; it must be folded into l5d-ctx-dtab", v)
	}
	if ua := got.Get("User-Agent"); ua != "Go-http-client/1.1" {
		// The client's own User-Agent passes through untouched.
		t.Errorf("User-Agent = %q; want the client's", ua)
	}
	if resp.Header.Get("X-Hop-Resp") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("response kept hop-by-hop headers: %v", resp.Header)
	}
	if resp.Header.Get("X-Kept") != "yes" || resp.Header.Get("Via") != "1.1 linkerd" {
		t.Errorf("response headers = %v; want X-Kept and Via", resp.Header)
	}
	if resp.Trailer.Get("X-Trailer") != "trailer-value" {
		t.Errorf("trailer = %q; want trailer-value", resp.Trailer.Get("X-Trailer"))
	}
	if n := p.metric("rt/test/service/svc/hello/requests"); n != 1 {
		t.Errorf("service requests = %d; want 1", n)
	}
	if n := p.metric("rt/test/client/#/test/hello/requests"); n != 1 {
		t.Errorf("client requests = %d; want 1", n)
	}
}

func TestNoUserAgentAdded(t *testing.T) {
	t.Parallel()
	seen := make(chan []string, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- append(r.Header["User-Agent"], r.Header["Accept-Encoding"]...)
	}))
	defer backend.Close()
	p := newTestProxy(t, map[string]string{"hello": backend.URL}, proxyOpts{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: hello\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ua := <-seen; len(ua) != 0 {
		t.Errorf("backend saw User-Agent/Accept-Encoding %q; want none (the proxy adds no headers of its own)", ua)
	}
}

func TestAbsoluteFormRequest(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", r.Host, r.RequestURI, r.Header.Get("l5d-dst-service"))
	}))
	defer backend.Close()
	p := newTestProxy(t, map[string]string{"hello": backend.URL}, proxyOpts{})
	pu, _ := url.Parse(p.URL)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err := c.Get("http://hello/path?q=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := string(b), "hello /path?q=1 /svc/hello"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestStreamingRequestWithTrailers(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %v %s", len(b), r.TransferEncoding, r.Trailer.Get("X-Req-Trailer"))
	}))
	defer backend.Close()
	p := newTestProxy(t, map[string]string{"hello": backend.URL}, proxyOpts{})
	pr, pw := io.Pipe()
	req := newReq(t, "POST", p.URL, "hello", pr)
	req.Trailer = http.Header{"X-Req-Trailer": nil}
	go func() {
		for range 100 {
			pw.Write(make([]byte, 1000))
		}
		req.Trailer.Set("X-Req-Trailer", "done")
		pw.Close()
	}()
	_, body := do(t, req)
	if body != "100000 [chunked] done" {
		t.Errorf("backend saw %q; want \"100000 [chunked] done\"", body)
	}
}

func TestResponseStreamsBeforeEnd(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second\n")
	}))
	defer backend.Close()
	defer close(release)
	p := newTestProxy(t, map[string]string{"hello": backend.URL}, proxyOpts{})
	resp, err := http.DefaultTransport.RoundTrip(newReq(t, "GET", p.URL, "hello", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line = %q, %v; want it before the backend finishes", line, err)
	}
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "expect=%q body=%s", r.Header.Get("Expect"), b)
	}))
	defer backend.Close()
	p := newTestProxy(t, map[string]string{"hello": backend.URL}, proxyOpts{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: hello\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100") {
		t.Fatalf("first line = %q, %v; want 100 Continue before the body is sent", status, err)
	}
	br.ReadString('\n') // blank line after 100
	io.WriteString(conn, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if got := string(b); got != `expect="100-continue" body=hello` {
		t.Errorf("backend saw %q", got)
	}
}

func TestUpgradeEcho(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
	}))
	defer backend.Close()
	p := newTestProxy(t, map[string]string{"hello": backend.URL}, proxyOpts{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: hello\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("got %d %v; want 101 Upgrade: echo", resp.StatusCode, resp.Header)
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		io.WriteString(conn, msg)
		line, err := br.ReadString('\n')
		if err != nil || line != msg {
			t.Fatalf("echo = %q, %v; want %q", line, err, msg)
		}
	}
}

func TestErrorResponses(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	p := newTestProxy(t, map[string]string{"dead": deadURL, "empty": ""}, proxyOpts{})
	cases := []struct {
		name, host, dtabHdr string
		status              int
		errHas, bodyHas     string
		retryable           bool
	}{
		{name: "unknown name", host: "nowhere", status: 502, errHas: "Unable to route request!",
			bodyHas: "service name: /svc/nowhere"},
		{name: "no endpoints", host: "empty", status: 502, errHas: "Unable to route request!",
			bodyHas: "no endpoints"},
		{name: "connection refused", host: "dead", status: 502, errHas: "unable to connect",
			bodyHas: "/#/test/dead", retryable: true},
		{name: "bad dtab", host: "dead", dtabHdr: "/foo=>", status: 400, errHas: "l5d-dtab"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := newReq(t, "GET", p.URL+"/x", c.host, nil)
			if c.dtabHdr != "" {
				req.Header.Set("l5d-dtab", c.dtabHdr)
			}
			resp, body := do(t, req)
			if resp.StatusCode != c.status {
				t.Errorf("status = %d; want %d (body %q)", resp.StatusCode, c.status, body)
			}
			lerr, err := url.QueryUnescape(resp.Header.Get("l5d-err"))
			if err != nil || !strings.Contains(lerr, c.errHas) {
				t.Errorf("l5d-err = %q; want it to contain %q", lerr, c.errHas)
			}
			if !strings.Contains(body, c.bodyHas) || !strings.Contains(body, c.errHas) {
				t.Errorf("body = %q; want %q and %q", body, c.errHas, c.bodyHas)
			}
			if got := resp.Header.Get("l5d-retryable") == "true"; got != c.retryable {
				t.Errorf("l5d-retryable = %v; want %v", got, c.retryable)
			}
		})
	}
}

func TestClearContext(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header().Set("l5d-success-class", "1.0")
	}))
	defer backend.Close()
	p := newTestProxy(t, map[string]string{"hello": backend.URL}, proxyOpts{clear: true})
	req := newReq(t, "GET", p.URL, "hello", nil)
	req.Header.Set("l5d-dtab", "/svc/hello=>/#/test/nowhere")
	req.Header.Set("l5d-ctx-thing", "x")
	req.Header.Set("L5D-Sample", "1")
	resp, _ := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d; want 200 (the l5d-dtab override must be ignored)", resp.StatusCode)
	}
	var l5d []string
	for k := range <-seen {
		if proxy.IsL5d(k) {
			l5d = append(l5d, k)
		}
	}
	want := map[string]bool{"L5d-Dst-Service": true, "L5d-Dst-Client": true, "L5d-Reqid": true, "L5d-Ctx-Trace": true}
	if len(l5d) != len(want) {
		t.Errorf("backend saw l5d headers %v; want exactly %v", l5d, want)
	}
	for _, k := range l5d {
		if !want[k] {
			t.Errorf("backend saw %s", k)
		}
	}
	if resp.Header.Get("l5d-success-class") != "" {
		t.Errorf("l5d-* response header leaked to an untrusted client")
	}
	// Errors keep their status but lose l5d-err and the body.
	resp, body := do(t, newReq(t, "GET", p.URL, "nowhere", nil))
	if resp.StatusCode != 502 || resp.Header.Get("l5d-err") != "" || body != "" {
		t.Errorf("error = %d l5d-err=%q body=%q; want 502, no l5d-err, empty body",
			resp.StatusCode, resp.Header.Get("l5d-err"), body)
	}
}

func TestLiveAddressUpdate(t *testing.T) {
	t.Parallel()
	mk := func(s string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s) }))
	}
	a, b := mk("a"), mk("b")
	defer a.Close()
	defer b.Close()
	p := newTestProxy(t, map[string]string{"hello": a.URL}, proxyOpts{})
	if _, body := do(t, newReq(t, "GET", p.URL, "hello", nil)); body != "a" {
		t.Fatalf("body = %q; want a", body)
	}
	p.namer.Set("hello", addrOf(t, b.URL))
	if _, body := do(t, newReq(t, "GET", p.URL, "hello", nil)); body != "b" {
		t.Fatalf("after the namer moved hello: body = %q; want b", body)
	}
}

func TestMaxConcurrentRequests(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	started := make(chan struct{}, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-block
	}))
	defer backend.Close()
	p := newTestProxy(t, map[string]string{"hello": backend.URL}, proxyOpts{maxConc: 1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.DefaultTransport.RoundTrip(newReq(t, "GET", p.URL, "hello", nil))
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	resp, _ := do(t, newReq(t, "GET", p.URL, "hello", nil))
	close(block)
	<-done
	if resp.StatusCode != 503 || resp.Header.Get("l5d-err") == "" {
		t.Errorf("second request = %d l5d-err=%q; want 503 with l5d-err", resp.StatusCode, resp.Header.Get("l5d-err"))
	}
}

func TestNoHostIsUnknownDestination(t *testing.T) {
	t.Parallel()
	p := newTestProxy(t, map[string]string{}, proxyOpts{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /x HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	lerr, _ := url.QueryUnescape(resp.Header.Get("l5d-err"))
	if resp.StatusCode != 400 || !strings.HasPrefix(lerr, "Unknown destination: Request(\"GET /x\", from 127.0.0.1:") ||
		!strings.HasSuffix(string(b), " / Host header is absent") {
		t.Errorf("got %d l5d-err=%q body=%q; want 400 Unknown destination ... / Host header is absent", resp.StatusCode, lerr, b)
	}
}

func TestNamerChangeKeepsInFlightRequests(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	var first sync.Once
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only the first request is held; one that races the namer
		// change below answers at once.
		held := false
		first.Do(func() { held = true; close(started) })
		if held {
			<-release
		}
		io.WriteString(w, "a")
	}))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") }))
	defer b.Close()
	p := newTestProxy(t, map[string]string{"hello": a.URL}, proxyOpts{})
	type result struct {
		body string
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.DefaultTransport.RoundTrip(newReq(t, "GET", p.URL, "hello", nil))
		if err != nil {
			inflight <- result{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- result{string(body), err}
	}()
	<-started
	// Namer changes reach the router asynchronously (pushed, not polled):
	// wait, bounded, for each one to show.
	eventually := func(what string, ok func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			good, got := ok()
			if good {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: still %s after 5s", what, got)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	p.namer.Set("hello", addrOf(t, b.URL))
	eventually("new request after the move (want body b)", func() (bool, string) {
		_, body := do(t, newReq(t, "GET", p.URL, "hello", nil))
		return body == "b", fmt.Sprintf("body %q", body)
	})
	p.namer.Delete("hello")
	eventually("request after the name was deleted (want 502)", func() (bool, string) {
		resp, _ := do(t, newReq(t, "GET", p.URL, "hello", nil))
		return resp.StatusCode == 502, fmt.Sprintf("status %d", resp.StatusCode)
	})
	close(release)
	if r := <-inflight; r.err != nil || r.body != "a" {
		t.Errorf("in-flight request: %q %v; want it to finish on a", r.body, r.err)
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello!") }))
	defer backend.Close()
	p := newTestProxy(t, map[string]string{"hello": backend.URL}, proxyOpts{})
	var buf syncBuf
	p.handler.p.AccessLog = NewAccessLog(&buf)
	req := newReq(t, "GET", p.URL+"/a?b=1", "hello", nil)
	req.Header.Set("User-Agent", `curl "x"`)
	do(t, req)
	do(t, newReq(t, "GET", p.URL+"/", "nowhere", nil))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("access log = %q; want 2 lines", buf.String())
	}
	if !strings.HasPrefix(lines[0], "hello - - [") || !strings.HasSuffix(lines[0], `] "GET /a?b=1 HTTP/1.1" 200 6 "-" "curl \"x\""`) {
		t.Errorf("line 1 = %q", lines[0])
	}
	if !strings.Contains(lines[1], `"GET / HTTP/1.1" 502 `) {
		t.Errorf("line 2 = %q", lines[1])
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
