package http1

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startLifeServer serves h with a connection lifetime of life and an idle
// timeout long enough never to matter.
func startLifeServer(t *testing.T, life time.Duration, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, &http.Server{IdleTimeout: 10 * time.Minute}, nil)
	s.SetLifeTime(life)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// sleepyHandler answers "ok", after sleeping for the duration in the
// query (?sleep=250ms), reading any request body first.
var sleepyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
		time.Sleep(d)
	}
	io.WriteString(w, "ok")
})

// exchange writes one raw request and reads its response whole.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, request string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatalf("write %q: %v", request, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response to %q: %v", request, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("response to %q: %d %q %v", request, resp.StatusCode, b, err)
	}
	return resp
}

// expectEOF checks that the server closes c within within.
func expectEOF(t *testing.T, c net.Conn, br *bufio.Reader, within time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	c.SetReadDeadline(t0.Add(within))
	n, err := br.Read(make([]byte, 1))
	took := time.Since(t0)
	if n != 0 || err != io.EOF {
		t.Fatalf("read %d bytes, %v after %v; want EOF within %v", n, err, took, within)
	}
	return took
}

// On the fast path, a connection reused while young keeps serving; the
// response written once it has reached serverSession.lifeTimeMs carries
// Connection: close, and the connection ends after it.
func TestServerLifeTimeConnectionClose(t *testing.T) {
	t.Parallel()
	const life = 300 * time.Millisecond // three quick exchanges fit in it, even on a loaded machine
	addr := startLifeServer(t, life, sleepyHandler)
	c, br := rawConn(t, addr)
	born := time.Now()
	for i := range 3 {
		if resp := exchange(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.Close {
			t.Fatalf("request %d at %v: Connection: close before the lifetime", i, time.Since(born))
		}
	}
	// This request starts young and its response is written old.
	resp := exchange(t, c, br, "GET /?sleep=400ms HTTP/1.1\r\nHost: x\r\n\r\n")
	// (ReadResponse turns Connection: close into Close, on a response
	// framed by chunks, so only the header can have set it.)
	if !resp.Close {
		t.Fatalf("response written %v after the connection opened (lifetime %v): no Connection: close", time.Since(born), life)
	}
	expectEOF(t, c, br, time.Second)
}

// A response whose body is still streaming when the connection reaches
// its lifetime cannot announce the close in its head: the connection is
// closed after its last chunk.
func TestServerLifeTimeDuringBody(t *testing.T) {
	t.Parallel()
	const life = 150 * time.Millisecond
	addr := startLifeServer(t, life, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "o")
		w.(http.Flusher).Flush()
		time.Sleep(2 * life)
		io.WriteString(w, "k")
	}))
	c, br := rawConn(t, addr)
	resp := exchange(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.Close {
		t.Fatal("a young connection's response head says Connection: close")
	}
	expectEOF(t, c, br, time.Second)
}

// A connection left idle past its lifetime is closed then, not at the
// (much longer) idle timeout.
func TestServerLifeTimeIdle(t *testing.T) {
	t.Parallel()
	const life = 200 * time.Millisecond
	addr := startLifeServer(t, life, sleepyHandler)
	born := time.Now() // before the dial: the server cannot have accepted earlier
	c, br := rawConn(t, addr)
	exchange(t, c, br, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	expectEOF(t, c, br, 2*time.Second)
	if age := time.Since(born); age < life || age > life+time.Second {
		t.Errorf("idle connection closed at age %v; want about %v", age, life)
	}
}

// Connections handed to the fallback server (requests with a body) have
// the same lifetime: kept while young, closed after the response during
// which they reached it, and closed when found idle at that age.
func TestServerLifeTimeFallback(t *testing.T) {
	t.Parallel()
	const life = 200 * time.Millisecond
	addr := startLifeServer(t, life, sleepyHandler)
	post := func(query string) string {
		return "POST /" + query + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
	}

	// Busy when it reaches its age: closed after that response.
	c, br := rawConn(t, addr)
	born := time.Now()
	for i := range 2 {
		if resp := exchange(t, c, br, post("")); resp.Close {
			t.Fatalf("request %d at %v: Connection: close before the lifetime", i, time.Since(born))
		}
	}
	exchange(t, c, br, post("?sleep=250ms"))
	expectEOF(t, c, br, time.Second)

	// Idle when it reaches its age: closed then.
	born = time.Now() // before the dial: the server cannot have accepted earlier
	c, br = rawConn(t, addr)
	exchange(t, c, br, post(""))
	expectEOF(t, c, br, 2*time.Second)
	if age := time.Since(born); age < life || age > life+time.Second {
		t.Errorf("idle handed-off connection closed at age %v; want about %v", age, life)
	}
}

// countingBackend is a real backend that counts the connections it
// accepts.
func countingBackend(t *testing.T) (addr string, conns *atomic.Int32) {
	t.Helper()
	conns = new(atomic.Int32)
	be := httptest.NewUnstartedServer(sleepyHandler)
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	return strings.TrimPrefix(be.URL, "http://"), conns
}

// A pooled connection idle longer than the client's idle time
// (clientSession.idleTimeMs / hostConnectionPool.idleTimeMs) is not
// reused: the next request dials.
func TestClientIdleTimeNotReused(t *testing.T) {
	t.Parallel()
	const idle = 150 * time.Millisecond
	addr, conns := countingBackend(t)
	cl := NewClient(addr, TransportOptions{IdleTimeout: idle})
	t.Cleanup(cl.CloseIdleConnections)
	u := "http://" + addr + "/"
	for range 3 {
		if _, body, err := get(t, cl, "GET", u); err != nil || body != "ok" {
			t.Fatalf("GET: %q %v", body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("backend saw %d connections for 3 back-to-back requests; want 1", n)
	}
	time.Sleep(idle + 100*time.Millisecond)
	if _, body, err := get(t, cl, "GET", u); err != nil || body != "ok" {
		t.Fatalf("GET: %q %v", body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("backend saw %d connections after the pooled one idled %v; want 2", n, idle+100*time.Millisecond)
	}
}

// A pooled connection older than TransportOptions.LifeTime
// (clientSession.lifeTimeMs) is closed instead of reused, however busy:
// neither when it comes back to the pool nor when taken from it.
func TestClientLifeTimeNotReused(t *testing.T) {
	t.Parallel()
	const life = 200 * time.Millisecond
	addr, conns := countingBackend(t)
	cl := NewClient(addr, TransportOptions{LifeTime: life})
	t.Cleanup(cl.CloseIdleConnections)
	u := "http://" + addr + "/"
	start := time.Now()
	// A request every 20 ms for 2.5 lifetimes: never idle for long, so
	// only the lifetime makes new connections.
	for n := 0; time.Since(start) < 5*life/2; n++ {
		if _, body, err := get(t, cl, "GET", u); err != nil || body != "ok" {
			t.Fatalf("GET %d: %q %v", n, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := conns.Load(); n < 3 || n > 4 {
		t.Errorf("backend saw %d connections over %v of requests with a %v lifetime; want 3 (or 4 with a slow scheduler)", n, time.Since(start), life)
	}
	// A connection whose lifetime ends while it waits in the pool is not
	// taken from it.
	cl.CloseIdleConnections()
	before := conns.Load()
	get(t, cl, "GET", u)
	time.Sleep(life + 50*time.Millisecond)
	if _, body, err := get(t, cl, "GET", u); err != nil || body != "ok" {
		t.Fatalf("GET: %q %v", body, err)
	}
	if n := conns.Load() - before; n != 2 {
		t.Errorf("%d connections for a request and one after the pooled connection's lifetime; want 2", n)
	}
}

// Without a lifetime, a connection is reused for as long as it is busy.
func TestClientNoLifeTimeReused(t *testing.T) {
	t.Parallel()
	addr, conns := countingBackend(t)
	cl := NewClient(addr, TransportOptions{})
	t.Cleanup(cl.CloseIdleConnections)
	for start := time.Now(); time.Since(start) < 300*time.Millisecond; time.Sleep(20 * time.Millisecond) {
		if _, body, err := get(t, cl, "GET", "http://"+addr+"/"); err != nil || body != "ok" {
			t.Fatalf("GET: %q %v", body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("backend saw %d connections; want 1", n)
	}
}
