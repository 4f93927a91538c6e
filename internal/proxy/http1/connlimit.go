package http1

import (
	"context"
	"net"
	"sync"
)

// ConnLimit caps the connections open to one endpoint
// (hostConnectionPool.maxSize) across every pool that dials it: the fast
// client's, the fallback transport's for requests with bodies, and, with
// per-destination TLS, one client per TLS configuration. A request that
// finds the endpoint at its limit takes a connection another request
// returns to its pool, or the slot of one that closes; an idle connection
// of another pool is closed to make room. At most maxWaiters requests wait
// (hostConnectionPool.maxWaiters; 0: no limit); the next one fails at once
// with ErrTooManyWaiters, as Finagle's pool rejects it.
type ConnLimit struct {
	max, maxWaiters int

	mu       sync.Mutex
	open     int
	waiters  int
	changed  chan struct{} // closed, and replaced, when a slot frees or a connection goes idle
	evictors []func() bool // each closes one idle connection of a pool, if it has one
}

// ErrTooManyWaiters is the error of a request that would wait for a
// connection beyond hostConnectionPool.maxWaiters: 503, and retryable,
// since the request was never written (the router may requeue it to
// another endpoint).
var ErrTooManyWaiters error = tooManyWaiters{}

type tooManyWaiters struct{}

func (tooManyWaiters) Error() string {
	return "too many requests waiting for a connection to this endpoint (hostConnectionPool.maxWaiters)"
}
func (tooManyWaiters) HTTPStatus() int  { return 503 }
func (tooManyWaiters) NotWritten() bool { return true }
func (tooManyWaiters) Retryable() bool  { return true }

// NewConnLimit returns a limit of maxConns connections with at most
// maxWaiters requests waiting, or nil (no limit) when maxConns is not
// positive.
func NewConnLimit(maxConns, maxWaiters int) *ConnLimit {
	if maxConns <= 0 {
		return nil
	}
	return &ConnLimit{max: maxConns, maxWaiters: max(maxWaiters, 0), changed: make(chan struct{})}
}

// addEvictor registers a pool's way of closing one of its idle connections.
func (l *ConnLimit) addEvictor(f func() bool) {
	l.mu.Lock()
	l.evictors = append(l.evictors, f)
	l.mu.Unlock()
}

// tryAcquire takes a slot if one is free; otherwise it returns the channel
// that will be closed at the next change, taken under the same lock so
// that no change between the two can be missed.
func (l *ConnLimit) tryAcquire() (ok bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open < l.max {
		l.open++
		return true, nil
	}
	return false, l.changed
}

func (l *ConnLimit) release() {
	l.mu.Lock()
	l.open--
	l.signalLocked()
	l.mu.Unlock()
}

// idled tells waiters that a pool has an idle connection to hand over.
func (l *ConnLimit) idled() {
	l.mu.Lock()
	l.signalLocked()
	l.mu.Unlock()
}

func (l *ConnLimit) signalLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// evictIdle closes one idle connection of some pool, freeing its slot. It
// reports whether it closed one.
func (l *ConnLimit) evictIdle() bool {
	l.mu.Lock()
	evictors := l.evictors
	l.mu.Unlock()
	for _, f := range evictors {
		if f() {
			return true
		}
	}
	return false
}

// wait blocks until changed is closed or ctx ends, counting itself among
// the waiters.
func (l *ConnLimit) wait(ctx context.Context, changed <-chan struct{}) error {
	l.mu.Lock()
	if l.maxWaiters > 0 && l.waiters >= l.maxWaiters {
		l.mu.Unlock()
		return ErrTooManyWaiters
	}
	l.waiters++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.waiters--
		l.mu.Unlock()
	}()
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquire takes a slot for a new connection, making room by closing an
// idle connection of any pool, else waiting for one to free.
func (l *ConnLimit) acquire(ctx context.Context) error {
	for {
		ok, changed := l.tryAcquire()
		if ok {
			return nil
		}
		if l.evictIdle() {
			continue
		}
		if err := l.wait(ctx, changed); err != nil {
			return err
		}
	}
}

// limitDial holds a slot of l for every connection dial makes, from
// before the dial until the connection is closed.
func limitDial(l *ConnLimit, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if l == nil {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := l.acquire(ctx); err != nil {
			return nil, err
		}
		return l.dialHeld(ctx, dial, network, addr)
	}
}

// dialHeld dials with a slot already taken, giving it back if the dial
// fails and when the connection closes.
func (l *ConnLimit) dialHeld(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), network, addr string) (net.Conn, error) {
	c, err := dial(ctx, network, addr)
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedConn{Conn: c, l: l}, nil
}

// limitedConn gives its slot back once, when it is first closed.
type limitedConn struct {
	net.Conn
	l    *ConnLimit
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}
