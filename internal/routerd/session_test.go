package routerd

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sessionBackend is a real backend that answers "ok" (after the sleep
// in the query, ?sleep=350ms) and counts its connections; h2c when h2.
func sessionBackend(t *testing.T, h2 bool) (port string, conns *atomic.Int32) {
	t.Helper()
	conns = new(atomic.Int32)
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		io.WriteString(w, "ok")
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	if h2 {
		be.Config.Protocols = new(http.Protocols)
		be.Config.Protocols.SetUnencryptedHTTP2(true)
	}
	be.Start()
	t.Cleanup(be.Close)
	return be.Listener.Addr().String()[len("127.0.0.1:"):], conns
}

// sessionExchange sends one GET for web on a raw connection and reads the
// response whole.
func sessionExchange(t *testing.T, c net.Conn, br *bufio.Reader, query string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, "GET /"+query+" HTTP/1.1\r\nHost: web\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET /%s: %v", query, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("GET /%s: %d %q", query, resp.StatusCode, b)
	}
	return resp
}

// waitEOF checks that the router closes c within d and returns when it
// did.
func waitEOF(t *testing.T, c net.Conn, br *bufio.Reader, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read %d bytes, %v; want the router to close the connection within %v", n, err, d)
	}
}

// TestHTTPSessionsApplied: an http router from config text applies
// servers[].serverSession and client.clientSession to its real
// connections, and warns about nothing but the client lifetime's limit.
func TestHTTPSessionsApplied(t *testing.T) {
	t.Parallel()
	port, beConns := sessionBackend(t, false)
	text := `
admin: {port: 0}
routers:
- protocol: http
  label: s
  dtab: /svc/web => /$/inet/127.0.0.1/` + port + `;
  servers: [{port: 0, serverSession: {idleTimeMs: 200, lifeTimeMs: 300}}]
  client:
    hostConnectionPool: {idleTimeMs: 60000}
    clientSession: {idleTimeMs: 150, lifeTimeMs: 250}
`
	c, err := LoadConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if ws := Warnings(c); len(ws) != 1 || !strings.Contains(ws[0], "clientSession.lifeTimeMs applies to the connections of requests without a body only") {
		t.Errorf("warnings %q; want only the client lifetime's limit", ws)
	}
	p, err := startFrom(t, text)
	if err != nil {
		t.Fatal(err)
	}
	addr := p.ServerAddrs()[0]
	dial := func() (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		return conn, bufio.NewReader(conn)
	}

	t.Run("server idleTimeMs", func(t *testing.T) {
		conn, br := dial()
		sessionExchange(t, conn, br, "")
		t0 := time.Now()
		waitEOF(t, conn, br, 2*time.Second)
		if d := time.Since(t0); d < 200*time.Millisecond {
			t.Errorf("idle connection closed after %v; want at least idleTimeMs (200ms)", d)
		}
	})
	t.Run("server lifeTimeMs", func(t *testing.T) {
		conn, br := dial()
		for range 2 {
			if resp := sessionExchange(t, conn, br, ""); resp.Close {
				t.Fatal("Connection: close on a young connection")
			}
		}
		// Its response is written when the connection is 350 ms old.
		if resp := sessionExchange(t, conn, br, "?sleep=350ms"); !resp.Close {
			t.Error("no Connection: close on the response that passed lifeTimeMs (300ms)")
		}
		waitEOF(t, conn, br, time.Second)
	})

	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	get := func() {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "web"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("GET: %d %q", resp.StatusCode, b)
		}
	}
	t.Run("client idleTimeMs", func(t *testing.T) {
		// Wait out the lifetime of the connections the subtests above
		// pooled; then clientSession.idleTimeMs (150), smaller than
		// hostConnectionPool.idleTimeMs (60000), decides.
		time.Sleep(300 * time.Millisecond)
		before := beConns.Load()
		get()
		get()
		if n := beConns.Load() - before; n != 1 {
			t.Fatalf("%d new backend connections for two back-to-back requests; want 1", n)
		}
		time.Sleep(250 * time.Millisecond)
		get()
		if n := beConns.Load() - before; n != 2 {
			t.Errorf("%d backend connections, the first idle 250ms before the last request; want 2 (clientSession.idleTimeMs 150)", n)
		}
	})
	t.Run("client lifeTimeMs", func(t *testing.T) {
		// Past clientSession.idleTimeMs: the first request dials.
		time.Sleep(200 * time.Millisecond)
		before := beConns.Load()
		start := time.Now()
		for time.Since(start) < 625*time.Millisecond {
			get()
			time.Sleep(20 * time.Millisecond)
		}
		if n := beConns.Load() - before; n < 3 || n > 4 {
			t.Errorf("%d backend connections over %v of requests 20ms apart with lifeTimeMs 250; want 3 (or 4 on a slow machine)", n, time.Since(start))
		}
	})
}

// TestH2SessionsApplied: an h2 router applies serverSession (idle time,
// and the lifetime by a graceful GOAWAY) and clientSession.idleTimeMs.
func TestH2SessionsApplied(t *testing.T) {
	t.Parallel()
	port, beConns := sessionBackend(t, true)
	text := `
admin: {port: 0}
routers:
- protocol: h2
  label: s2
  dtab: /svc/web => /$/inet/127.0.0.1/` + port + `;
  servers: [{port: 0, serverSession: {idleTimeMs: 200, lifeTimeMs: 300}}]
  client: {clientSession: {idleTimeMs: 150}}
`
	c, err := LoadConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if ws := Warnings(c); len(ws) != 0 {
		t.Errorf("warnings %q for applied sessions", ws)
	}
	p, err := startFrom(t, text)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + p.ServerAddrs()[0] + "/"
	var routerConns atomic.Int32
	tr := &http.Transport{Protocols: new(http.Protocols), DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		routerConns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(query string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url+query, nil)
		req.Host = "web"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" || resp.ProtoMajor != 2 {
			t.Fatalf("GET /%s: %s %d %q", query, resp.Proto, resp.StatusCode, b)
		}
	}

	// Server lifetime: the request in flight when the connection ages
	// finishes; the next ones go on one new connection.
	get("")
	get("?sleep=350ms")
	get("")
	get("")
	if n := routerConns.Load(); n != 2 {
		t.Errorf("the client dialed the router %d times; want 2 (a GOAWAY after lifeTimeMs 300)", n)
	}
	// Server idle time: idle 300ms, the connection is gone. Client idle
	// time: the router's connection to the backend idled 300ms too (>
	// clientSession.idleTimeMs 150) and is replaced. (Go's HTTP/2 client
	// does not reuse a connection whose stream outlasted its idle time,
	// as the slow one above did: hence counting from here.)
	be := beConns.Load()
	time.Sleep(300 * time.Millisecond)
	get("")
	if n := routerConns.Load(); n != 3 {
		t.Errorf("the client dialed the router %d times; want 3 (closed after idleTimeMs 200)", n)
	}
	get("")
	if n := beConns.Load() - be; n != 1 {
		t.Errorf("the backend saw %d new connections after the router's idled 300ms; want 1", n)
	}
}
