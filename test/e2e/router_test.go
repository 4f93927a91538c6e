package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/linnet-mesh/linnet/internal/demo"
)

// oneRouter returns a config with one http router labelled "web" on
// port, with the given dtab and extra router/server keys.
func oneRouter(adminPort, port int, dtabText, routerExtra, serverExtra string) string {
	return fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
routers:
- protocol: http
  label: web
  dtab: |
%s
%s  servers:
  - ip: 127.0.0.1
    port: %d
%s`, adminPort, indent(dtabText, "    "), routerExtra, port, serverExtra)
}

func indent(s, pfx string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = pfx + strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

func inet(port int) string { return fmt.Sprintf("/$/inet/127.0.0.1/%d", port) }

func TestHostRoutingAndDtabOverride(t *testing.T) {
	t.Parallel()
	_, hello := backend(t, text("hello"))
	_, world := backend(t, text("world"))
	admin, port := freePort(t), freePort(t)
	startRouter(t, oneRouter(admin, port, fmt.Sprintf(`
		/svc/hello => %s;
		/svc/world => %s;`, inet(hello), inet(world)), "", ""), admin)
	u := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for host, want := range map[string]string{"hello": "hello", "world": "world"} {
		if code, _, body := send(t, "GET", u, host, nil, nil); code != 200 || body != want {
			t.Errorf("Host %s: got %d %q; want 200 %q", host, code, body, want)
		}
	}
	code, _, body := send(t, "GET", u, "hello", map[string]string{"l5d-dtab": "/svc/hello => /svc/world"}, nil)
	if code != 200 || body != "world" {
		t.Errorf("with l5d-dtab override: got %d %q; want 200 \"world\"", code, body)
	}
}

func TestPathRouting(t *testing.T) {
	t.Parallel()
	_, api := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "api saw %s", r.URL.RequestURI())
	}))
	admin, port := freePort(t), freePort(t)
	startRouter(t, oneRouter(admin, port, "/svc/api => "+inet(api)+";",
		"  identifier:\n    kind: io.l5d.path\n    segments: 1\n    consume: true\n", ""), admin)
	code, _, body := send(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/api/v1/users?id=7", port), "anything", nil, nil)
	if code != 200 || body != "api saw /v1/users?id=7" {
		t.Errorf("got %d %q; want 200 \"api saw /v1/users?id=7\"", code, body)
	}
	code, hdr, _ := send(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), "anything", nil, nil)
	if code != 400 || !strings.Contains(unescape(hdr.Get("l5d-err")), "not enough segments in path") {
		t.Errorf("path /: got %d l5d-err %q; want 400 not enough segments", code, hdr.Get("l5d-err"))
	}
}

func TestHTTPProxyMode(t *testing.T) {
	t.Parallel()
	_, hello := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s %s", r.Host, r.RequestURI)
	}))
	admin, port := freePort(t), freePort(t)
	startRouter(t, oneRouter(admin, port, "/svc/hello => "+inet(hello)+";", "", ""), admin)
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err := c.Get("http://hello/greet?x=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello hello /greet?x=1" {
		t.Errorf("via http_proxy: got %q; want \"hello hello /greet?x=1\"", b)
	}
}

// TestWalkthroughPropagation is the walkthrough's layout: an incoming and
// an outgoing router; hello calls world through the outgoing one and
// forwards l5d-ctx-* headers, so an l5d-dtab sent to the incoming router
// changes which world answers.
func TestWalkthroughPropagation(t *testing.T) {
	t.Parallel()
	admin, outgoing, incoming := freePort(t), freePort(t), freePort(t)
	helloH, err := demo.Hello("world", fmt.Sprintf("http://127.0.0.1:%d", outgoing))
	if err != nil {
		t.Fatal(err)
	}
	_, hello := backend(t, helloH)
	_, v1 := backend(t, demo.World("world"))
	_, v2 := backend(t, demo.World("earth"))
	dt := fmt.Sprintf(`    /srv/hello => %s;
    /srv/world-v1 => %s;
    /srv/world-v2 => %s;
    /host => /srv;
    /svc => /host;
    /host/world => /srv/world-v1;
    /host/www.hello.world => /srv/hello;`, inet(hello), inet(v1), inet(v2))
	cfg := fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: http
  label: outgoing
  dtab: |
%s
  servers: [{ip: 127.0.0.1, port: %d}]
- protocol: http
  label: incoming
  dtab: |
%s
  servers: [{ip: 127.0.0.1, port: %d}]
`, admin, dt, outgoing, dt, incoming)
	l := startRouter(t, cfg, admin)
	u := fmt.Sprintf("http://127.0.0.1:%d/", incoming)
	code, _, body := send(t, "GET", u, "www.hello.world", nil, nil)
	if code != 200 || body != "Hello (127.0.0.1) world (127.0.0.1)!!" {
		t.Fatalf("got %d %q; want \"Hello (127.0.0.1) world (127.0.0.1)!!\"", code, body)
	}
	code, _, body = send(t, "GET", u, "www.hello.world", map[string]string{"l5d-dtab": "/host/world => /srv/world-v2;"}, nil)
	if code != 200 || body != "Hello (127.0.0.1) earth (127.0.0.1)!!" {
		t.Fatalf("with l5d-dtab: got %d %q; want earth", code, body)
	}
	// Both routers counted their traffic.
	m := metrics(t, l)
	for _, k := range []string{"rt/incoming/service/svc/www.hello.world/requests", "rt/outgoing/service/svc/world/requests"} {
		if m[k] < 2 {
			t.Errorf("%s = %v; want 2", k, m[k])
		}
	}
}

func TestStreaming100MB(t *testing.T) {
	t.Parallel()
	const size = 100 << 20
	_, be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		buf := bytes.Repeat([]byte("0123456789abcdef"), 4096)
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	admin, port := freePort(t), freePort(t)
	l := startRouter(t, oneRouter(admin, port, "/svc/big => "+inet(be)+";", "", ""), admin)
	u := fmt.Sprintf("http://127.0.0.1:%d/", port)
	// Sample the router's anonymous memory (heap, stacks; not the
	// binary's pages) while 200 MB go through it.
	stopSampling := make(chan struct{})
	peakAnon := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := l.ProcStatus("RssAnon"); v > peak {
				peak = v
			}
			select {
			case <-stopSampling:
				peakAnon <- peak
				return
			case <-tick.C:
			}
		}
	}()

	// Upload: a chunked 100 MB body, generated as it is sent.
	pr, pw := io.Pipe()
	want := sha256.New()
	go func() {
		buf := bytes.Repeat([]byte("z"), 64<<10)
		for sent := 0; sent < size; sent += len(buf) {
			want.Write(buf)
			if _, err := pw.Write(buf); err != nil {
				return
			}
		}
		pw.Close()
	}()
	code, _, body := send(t, "POST", u, "big", nil, pr)
	if exp := fmt.Sprintf("%d %x", size, want.Sum(nil)); code != 200 || body != exp {
		t.Errorf("upload: got %d %q; want %q", code, body, exp)
	}
	// Download.
	req, _ := http.NewRequest("GET", u, nil)
	req.Host = "big"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Errorf("download: %d bytes, %v; want %d", n, err, size)
	}
	close(stopSampling)
	if peak := <-peakAnon; peak > 32<<10 {
		t.Errorf("router anonymous RSS peaked at %d kB while moving 200 MB; want under 32 MB (bodies must stream)", peak)
	} else {
		t.Logf("router anonymous RSS peaked at %d kB while moving 200 MB", peak)
	}
}

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	_, ws := backend(t, websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }))
	admin, port := freePort(t), freePort(t)
	startRouter(t, oneRouter(admin, port, "/svc/ws => "+inet(ws)+";",
		"  identifier:\n    kind: io.l5d.static\n    path: /ws\n", ""), admin)
	cfg, err := websocket.NewConfig(fmt.Sprintf("ws://127.0.0.1:%d/echo", port), "http://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	c, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("websocket through linnet: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, msg := range []string{"hello", "world"} {
		if err := websocket.Message.Send(c, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(c, &got); err != nil || got != msg {
			t.Fatalf("echo = %q, %v; want %q", got, err, msg)
		}
	}
}

func TestClearContext(t *testing.T) {
	t.Parallel()
	_, be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var l5d []string
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "l5d-") {
				l5d = append(l5d, strings.ToLower(k))
			}
		}
		w.Header().Set("l5d-internal", "secret")
		fmt.Fprintf(w, "%d", len(l5d))
	}))
	admin, port := freePort(t), freePort(t)
	startRouter(t, oneRouter(admin, port, "/svc/hello => "+inet(be)+";", "", "    clearContext: true\n"), admin)
	u := fmt.Sprintf("http://127.0.0.1:%d/", port)
	code, hdr, body := send(t, "GET", u, "hello", map[string]string{
		"l5d-dtab": "/svc/hello => /$/inet/127.0.0.1/1", "l5d-ctx-user": "x", "l5d-sample": "1"}, nil)
	// The backend sees only l5d-dst-service, -client, l5d-reqid, l5d-ctx-trace.
	if code != 200 || body != "4" {
		t.Errorf("got %d %q; want 200 and exactly 4 l5d headers at the backend (the override ignored)", code, body)
	}
	if hdr.Get("l5d-internal") != "" {
		t.Errorf("l5d-* response header reached the untrusted client")
	}
	code, hdr, body = send(t, "GET", u, "nowhere", nil, nil)
	if code != 502 || hdr.Get("l5d-err") != "" || body != "" {
		t.Errorf("error through clearContext: %d l5d-err=%q body=%q; want 502 with no details", code, hdr.Get("l5d-err"), body)
	}
}

func unescape(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

func TestErrors(t *testing.T) {
	t.Parallel()
	deadPort := freePort(t)
	admin, port := freePort(t), freePort(t)
	startRouter(t, oneRouter(admin, port, fmt.Sprintf(`
		/svc/dead => %s;
		/svc/empty => $;
		/svc/neg => ~;`, inet(deadPort)), "", ""), admin)
	u := fmt.Sprintf("http://127.0.0.1:%d/", port)
	cases := []struct {
		host      string
		hdr       map[string]string
		status    int
		has       []string
		retryable bool
	}{
		{host: "unknown", status: 502, has: []string{"Unable to route request!", "service name: /svc/unknown", "/svc/dead => /$/inet/127.0.0.1/"}},
		{host: "neg", status: 502, has: []string{"Unable to route request!", "/svc/neg"}},
		{host: "empty", status: 502, has: []string{"Unable to route request!", "empty"}},
		{host: "dead", status: 502, has: []string{"unable to connect", fmt.Sprintf("127.0.0.1:%d", deadPort)}, retryable: true},
		{host: "dead", hdr: map[string]string{"l5d-dtab": "/svc/dead =>"}, status: 400, has: []string{"l5d-dtab"}},
		// A failing override (!) stops the fallback to the base rule.
		{host: "dead", hdr: map[string]string{"l5d-dtab": "/svc/dead => !", "l5d-ctx-x": "1"}, status: 502,
			has: []string{"override dtab:\n  /svc/dead => !"}},
	}
	for _, c := range cases {
		code, hdr, body := send(t, "GET", u, c.host, c.hdr, nil)
		lerr := unescape(hdr.Get("l5d-err"))
		if code != c.status {
			t.Errorf("Host %s %v: status %d; want %d (body %q)", c.host, c.hdr, code, c.status, body)
		}
		for _, h := range c.has {
			if !strings.Contains(lerr, h) || !strings.Contains(body, h) {
				t.Errorf("Host %s %v: l5d-err %q / body %q; want both to contain %q", c.host, c.hdr, lerr, body, h)
			}
		}
		if got := hdr.Get("l5d-retryable") == "true"; got != c.retryable {
			t.Errorf("Host %s: l5d-retryable %v; want %v", c.host, got, c.retryable)
		}
	}
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	_, hello := backend(t, text("hello"))
	admin, port := freePort(t), freePort(t)
	l := startRouter(t, oneRouter(admin, port, "/svc => /$/inet/127.0.0.1;\n/svc/hello => "+inet(hello)+";", "", ""), admin)
	send(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), "hello", nil, nil)

	m := metrics(t, l)
	for _, k := range []string{
		fmt.Sprintf("rt/web/server/127.0.0.1/%d/requests", port),
		"rt/web/service/svc/hello/requests",
		"rt/web/service/svc/hello/success",
		fmt.Sprintf("rt/web/client/$/inet/127.0.0.1/%d/requests", hello),
		fmt.Sprintf("rt/web/client/$/inet/127.0.0.1/%d/service/svc/hello/success", hello),
	} {
		if m[k] != 1 {
			t.Errorf("metrics.json %s = %v; want 1", k, m[k])
		}
	}
	code, _, body := send(t, "GET", l.admin+"/config.json", "", nil, nil)
	var cfg map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &cfg) != nil || cfg["routers"] == nil {
		t.Errorf("/config.json: %d %q; want the configuration as JSON", code, body)
	}
	q := url.Values{"path": {"/svc/hello"}, "namespace": {"web"}, "dtab": {"/svc/hello => " + inet(hello)}}
	code, _, body = send(t, "GET", l.admin+"/delegator.json?"+q.Encode(), "", nil, nil)
	if code != 200 || !strings.Contains(body, `"type":"delegate"`) || !strings.Contains(body, fmt.Sprintf(`"port":%d`, hello)) {
		t.Errorf("/delegator.json: %d %s; want a delegate tree down to port %d", code, body, hello)
	}
	code, _, body = send(t, "GET", l.admin+"/delegator", "", nil, nil)
	if code != 200 || !strings.Contains(body, "<select") || strings.Contains(body, "http://") && strings.Contains(body, "<script src") {
		t.Errorf("/delegator: %d; want a self-contained HTML page", code)
	}
	if code, _, _ = send(t, "GET", l.admin+"/admin/pprof/heap?debug=1", "", nil, nil); code != 200 {
		t.Errorf("/admin/pprof/heap: %d; want 200", code)
	}
	if code, _, _ = send(t, "GET", l.admin+"/admin/shutdown", "", nil, nil); code != 405 {
		t.Errorf("GET /admin/shutdown: %d; want 405", code)
	}
	code, _, body = send(t, "POST", l.admin+"/admin/shutdown", "", nil, nil)
	if code != 200 || body != "quitting\n" {
		t.Errorf("POST /admin/shutdown: %d %q; want 200 quitting", code, body)
	}
	select {
	case <-l.Exited():
		if st := l.ExitState(); !st.Success() {
			t.Errorf("linnet exited with %v after /admin/shutdown; want 0", st)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("linnet still running 15s after /admin/shutdown")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := oneRouter(freePort(t), freePort(t), "/svc => /$/inet/127.0.0.1;", "", "")
	cmd := exec.Command(linnetBin(t), "router", "-validate", "-log.level=DEBUG", "-com.twitter.finagle.foo=1", "-")
	cmd.Stdin = strings.NewReader(good)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("-validate on a good config: %v\n%s", err, out)
	}
	bad := strings.Replace(good, "  label: web", "  label: web\n  lable: typo", 1)
	cmd = exec.Command(linnetBin(t), "router", "-validate", "-")
	cmd.Stdin = strings.NewReader(bad)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "lable") || !strings.Contains(string(out), "line 7") {
		t.Errorf("-validate on a config with a typo: %v\n%s\nwant a failure naming `lable` at line 7", err, out)
	}
}

func TestRetriesAndClassification(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	_, flaky := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n%2 == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	admin, port := freePort(t), freePort(t)
	startRouter(t, oneRouter(admin, port, "/svc/flaky => "+inet(flaky)+";",
		"  service:\n    responseClassifier:\n      kind: io.l5d.http.retryableRead5XX\n", ""), admin)
	u := fmt.Sprintf("http://127.0.0.1:%d/", port)
	code, hdr, body := send(t, "GET", u, "flaky", nil, nil)
	if code != 200 || body != "ok" || hdr.Get("l5d-success-class") != "1.0" {
		t.Errorf("GET: %d %q success-class %q; want the retried 200 ok, 1.0", code, body, hdr.Get("l5d-success-class"))
	}
	// POST is not a read: the 503 comes back, classified as a failure.
	code, hdr, _ = send(t, "POST", u, "flaky", nil, strings.NewReader("x"))
	if code != 503 || hdr.Get("l5d-success-class") != "0.0" {
		t.Errorf("POST: %d success-class %q; want the 503 unretried, 0.0", code, hdr.Get("l5d-success-class"))
	}
}

// TestShutdownDrains: /admin/shutdown lets a request in flight finish,
// then the process exits 0.
func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	_, slow := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(500 * time.Millisecond)
		io.WriteString(w, "finished")
	}))
	admin, port := freePort(t), freePort(t)
	l := startRouter(t, oneRouter(admin, port, "/svc/slow => "+inet(slow)+";", "", ""), admin)
	type result struct {
		code int
		body string
	}
	res := make(chan result, 1)
	go func() {
		code, _, body := send(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), "slow", nil, nil)
		res <- result{code, body}
	}()
	<-started
	if code, _, _ := send(t, "POST", l.admin+"/admin/shutdown", "", nil, nil); code != 200 {
		t.Fatalf("shutdown: %d", code)
	}
	if r := <-res; r.code != 200 || r.body != "finished" {
		t.Errorf("in-flight request during shutdown: %d %q; want 200 finished", r.code, r.body)
	}
	select {
	case <-l.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("linnet still running after the drain")
	}
}
