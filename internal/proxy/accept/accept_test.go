package accept

import (
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// timeoutErr is a net.Error that reports a timeout.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "accept: timed out" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// flakyListener fails its first n Accepts with err, then accepts from the
// real loopback listener it wraps.
type flakyListener struct {
	net.Listener
	n   atomic.Int32
	err error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func dial(t *testing.T, ln net.Listener) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

func TestBackoffs(t *testing.T) {
	var d time.Duration
	var got []time.Duration
	for range 10 {
		d = Doubling(d)
		got = append(got, d)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("Doubling sequence = %v, want %v ms", got, want)
		}
	}
	if f := Fixed(10 * time.Millisecond); f(0) != 10*time.Millisecond || f(time.Second) != 10*time.Millisecond {
		t.Errorf("Fixed(10ms) = %v, %v", f(0), f(time.Second))
	}
}

// Timeouts are retried with the back-off; the connection after them is served.
func TestLoopRetriesTimeouts(t *testing.T) {
	ln := &flakyListener{Listener: listen(t), err: timeoutErr{}}
	ln.n.Store(3)
	var slept []time.Duration
	backoff := func(prev time.Duration) time.Duration {
		slept = append(slept, prev)
		return time.Millisecond
	}
	dial(t, ln)
	served := 0
	err := Loop(ln, backoff, func() bool { return false }, func(nc net.Conn) bool {
		served++
		nc.Close()
		return false
	})
	if !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Loop = %v after serve returned false, want http.ErrServerClosed", err)
	}
	if served != 1 {
		t.Errorf("served %d connections, want 1", served)
	}
	if len(slept) != 3 || slept[0] != 0 || slept[1] != time.Millisecond {
		t.Errorf("back-off called with %v, want [0 1ms 1ms]", slept)
	}
}

// A failure that is not a timeout ends the loop with that error, unless
// the server is closing.
func TestLoopEnds(t *testing.T) {
	boom := errors.New("accept: boom")
	ln := &flakyListener{Listener: listen(t), err: boom}
	ln.n.Store(1)
	never := func(net.Conn) bool { t.Error("serve called"); return true }
	if err := Loop(ln, Doubling, func() bool { return false }, never); err != boom {
		t.Errorf("Loop = %v, want %v", err, boom)
	}
	ln.n.Store(1)
	if err := Loop(ln, Doubling, func() bool { return true }, never); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Loop while closing = %v, want http.ErrServerClosed", err)
	}
	// A timeout while closing ends the loop too.
	ln.err = timeoutErr{}
	ln.n.Store(1)
	if err := Loop(ln, Doubling, func() bool { return true }, never); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Loop on a timeout while closing = %v, want http.ErrServerClosed", err)
	}
}

// Closing the listener ends a loop that serves many connections.
func TestLoopServesUntilClosed(t *testing.T) {
	ln := listen(t)
	var closing atomic.Bool
	conns := make(chan net.Conn)
	done := make(chan error, 1)
	go func() {
		done <- Loop(ln, Doubling, closing.Load, func(nc net.Conn) bool { conns <- nc; return true })
	}()
	for range 3 {
		dial(t, ln)
		(<-conns).Close()
	}
	closing.Store(true)
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Loop = %v after close, want http.ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Loop did not return after its listener closed")
	}
}
