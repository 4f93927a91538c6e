package http1

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// heldBackend answers every request once release is closed.
type heldBackend struct {
	srv              *httptest.Server
	release          chan struct{}
	inFlight, served atomic.Int64
}

func newHeldBackend(t *testing.T) *heldBackend {
	b := &heldBackend{release: make(chan struct{})}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		b.inFlight.Add(1)
		<-b.release
		b.inFlight.Add(-1)
		b.served.Add(1)
		io.WriteString(w, "ok")
	}))
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

func (b *heldBackend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// connCounter counts the client's open connections (dialed, not yet
// closed) through TransportOptions.WrapConn: the client's own view, which
// the limit governs (a server sees a close a little later).
type connCounter struct{ open, maxOpen atomic.Int64 }

func (c *connCounter) wrap(nc net.Conn) net.Conn {
	n := c.open.Add(1)
	for m := c.maxOpen.Load(); n > m && !c.maxOpen.CompareAndSwap(m, n); m = c.maxOpen.Load() {
	}
	return &countedConn{Conn: nc, c: c}
}

type countedConn struct {
	net.Conn
	c    *connCounter
	once sync.Once
}

func (cc *countedConn) Close() error {
	cc.once.Do(func() { cc.c.open.Add(-1) })
	return cc.Conn.Close()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func send(cl *Client, addr, method string, ctx context.Context) error {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("payload") // takes the fallback transport
	}
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+addr+"/", body)
	resp, err := cl.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && string(b) != "ok" {
		err = errors.New("body " + string(b))
	}
	return err
}

// hostConnectionPool.maxSize bounds the connections to an endpoint across
// the fast pool (bodiless requests) and the fallback transport (bodies):
// seven concurrent requests, two connections at most, all served.
func TestConnLimitCapsBothPools(t *testing.T) {
	b := newHeldBackend(t)
	var cc connCounter
	cl := NewClient(b.addr(), TransportOptions{MaxConns: 2, WrapConn: cc.wrap})
	t.Cleanup(cl.CloseIdleConnections)
	var wg sync.WaitGroup
	errs := make(chan error, 7)
	for i := range 7 {
		method := http.MethodGet
		if i%3 == 2 {
			method = http.MethodPost
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- send(cl, b.addr(), method, context.Background())
		}()
	}
	waitFor(t, "two requests at the backend", func() bool { return b.inFlight.Load() == 2 })
	time.Sleep(50 * time.Millisecond) // let any third connection show up
	if n := cc.open.Load(); n != 2 {
		t.Fatalf("%d connections open with 7 requests in flight, want 2", n)
	}
	close(b.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := b.served.Load(); got != 7 {
		t.Fatalf("served %d, want 7", got)
	}
	if m := cc.maxOpen.Load(); m > 2 {
		t.Fatalf("%d connections were open at once, want at most 2", m)
	}
}

// maxWaiters: with the one connection busy and one request waiting, the
// next fails at once, 503 and not written; the waiter is served.
func TestConnLimitMaxWaiters(t *testing.T) {
	b := newHeldBackend(t)
	cl := NewClient(b.addr(), TransportOptions{MaxConns: 1, MaxWaiters: 1})
	t.Cleanup(cl.CloseIdleConnections)
	done := make(chan error, 2)
	go func() { done <- send(cl, b.addr(), http.MethodGet, context.Background()) }()
	waitFor(t, "the first request at the backend", func() bool { return b.inFlight.Load() == 1 })
	go func() { done <- send(cl, b.addr(), http.MethodGet, context.Background()) }()
	waitFor(t, "a waiter", func() bool {
		cl.limit.mu.Lock()
		defer cl.limit.mu.Unlock()
		return cl.limit.waiters == 1
	})
	err := send(cl, b.addr(), http.MethodGet, context.Background())
	if !errors.Is(err, ErrTooManyWaiters) {
		t.Fatalf("third request: %v, want ErrTooManyWaiters", err)
	}
	var st interface{ HTTPStatus() int }
	var nw interface{ NotWritten() bool }
	if !errors.As(err, &st) || st.HTTPStatus() != 503 || !errors.As(err, &nw) || !nw.NotWritten() {
		t.Fatalf("ErrTooManyWaiters: want a 503, not-written error")
	}
	close(b.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// A waiter gives up with its request's context.
	b2 := newHeldBackend(t)
	cl2 := NewClient(b2.addr(), TransportOptions{MaxConns: 1})
	t.Cleanup(cl2.CloseIdleConnections)
	go func() { send(cl2, b2.addr(), http.MethodGet, context.Background()) }()
	waitFor(t, "the first request at the second backend", func() bool { return b2.inFlight.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := send(cl2, b2.addr(), http.MethodGet, ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter with a 50ms deadline: %v", err)
	}
	close(b2.release)
}

// An idle connection of one pool gives its slot to the other: with
// maxSize 1, a request with a body gets through while the fast pool holds
// the only connection idle, without waiting for the idle timeout.
func TestConnLimitEvictsIdle(t *testing.T) {
	b := newHeldBackend(t)
	close(b.release)
	var cc connCounter
	cl := NewClient(b.addr(), TransportOptions{MaxConns: 1, WrapConn: cc.wrap})
	t.Cleanup(cl.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodGet, http.MethodPost} {
		if err := send(cl, b.addr(), m, ctx); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	if m := cc.maxOpen.Load(); m != 1 {
		t.Fatalf("%d connections open at once, want 1", m)
	}
}

// Without maxSize nothing waits: seven requests, seven connections.
func TestNoConnLimit(t *testing.T) {
	b := newHeldBackend(t)
	cl := NewClient(b.addr(), TransportOptions{})
	t.Cleanup(cl.CloseIdleConnections)
	if cl.limit != nil {
		t.Fatal("a limit without MaxConns")
	}
	var wg sync.WaitGroup
	for range 7 {
		wg.Add(1)
		go func() { defer wg.Done(); send(cl, b.addr(), http.MethodGet, context.Background()) }()
	}
	waitFor(t, "seven requests at the backend", func() bool { return b.inFlight.Load() == 7 })
	close(b.release)
	wg.Wait()
}
