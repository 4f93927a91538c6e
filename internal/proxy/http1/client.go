package http1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/clock"
)

// Client is the client-tier transport of one endpoint. Requests without a
// body (GET, HEAD, DELETE... — the bulk of proxied traffic) take a fast
// path: they are written and their response read on the caller's
// goroutine over a pooled keep-alive connection, with the standard
// library's wire format code (Request.Write, http.ReadResponse). Every
// other request — a body to stream while the response may already be
// coming, Expect: 100-continue, an Upgrade — goes through an
// http.Transport, which handles those in full duplex.
//
// The fast path exists because http.Transport hands every request to two
// goroutines per connection (a reader and a writer); on a proxy's hot path
// those handoffs cost more CPU than the proxying itself.
type Client struct {
	addr     string
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle  int
	idleTime time.Duration
	lifeTime time.Duration // 0: unbounded
	fallback *http.Transport
	limit    *ConnLimit // nil: no hostConnectionPool.maxSize

	mu     sync.Mutex
	idle   []*clientConn // LIFO: the most recently used is the warmest
	closed bool
}

// NewClient returns the transport of the endpoint addr ("host:port").
func NewClient(addr string, o TransportOptions) *Client {
	o = o.withDefaults() // makes the limit the fallback transport shares
	cl := &Client{
		addr:     addr,
		dial:     wrapDial(dialFunc(&net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}, o), o),
		maxIdle:  o.MaxIdle,
		idleTime: o.IdleTimeout,
		lifeTime: o.LifeTime,
		fallback: NewTransport(o),
		limit:    o.Limit,
	}
	if cl.limit != nil {
		cl.limit.addEvictor(cl.evictOne)
	}
	return cl
}

type clientConn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt int64 // clock.Mono when it went back to the pool
	// expireAt is the clock.Mono time after which the connection is not
	// reused (0: never; TransportOptions.LifeTime).
	expireAt int64
	reused   bool
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// fastPath reports whether req can be sent without concurrent body
// streaming: no body, no 100-continue, no protocol upgrade.
func fastPath(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	if req.URL.Scheme != "http" {
		return false
	}
	h := req.Header
	if _, ok := h["Expect"]; ok {
		return false
	}
	if _, ok := h["Upgrade"]; ok {
		return false
	}
	return true
}

// RoundTrip implements http.RoundTripper.
func (cl *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if !fastPath(req) {
		return cl.fallback.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		pc, err := cl.get(req.Context())
		if err != nil {
			return nil, err
		}
		resp, wrote, err := pc.roundTrip(cl, req)
		if err == nil {
			return resp, nil
		}
		pc.c.Close()
		cl.discard(pc)
		// A pooled connection the endpoint had already closed fails at
		// once; try a fresh one, once, when the request provably did not
		// reach the endpoint or is idempotent.
		if pc.reused && attempt == 0 && req.Context().Err() == nil && (!wrote || idempotent(req.Method)) {
			continue
		}
		return nil, err
	}
}

func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// get returns an idle connection or dials a new one. At the endpoint's
// connection limit it waits for a connection returned to this pool or a
// slot freed, after making room by closing another pool's idle connection.
func (cl *Client) get(ctx context.Context) (*clientConn, error) {
	for {
		if pc := cl.freshIdle(); pc != nil {
			pc.reused = true
			return pc, nil
		}
		if cl.limit == nil {
			return cl.newConn(cl.dial(ctx, "tcp", cl.addr))
		}
		ok, changed := cl.limit.tryAcquire()
		if ok {
			return cl.newConn(cl.limit.dialHeld(ctx, cl.dial, "tcp", cl.addr))
		}
		if cl.limit.evictIdle() {
			continue
		}
		if err := cl.limit.wait(ctx, changed); err != nil {
			return nil, err
		}
	}
}

// freshIdle takes the most recently used idle connection that has not
// been idle too long nor outlived its lifetime, closing the stale ones it
// meets.
func (cl *Client) freshIdle() *clientConn {
	now := clock.Mono()
	cl.mu.Lock()
	for n := len(cl.idle); n > 0; n = len(cl.idle) {
		pc := cl.idle[n-1]
		cl.idle = cl.idle[:n-1]
		if time.Duration(now-pc.idleAt) < cl.idleTime && (pc.expireAt == 0 || now < pc.expireAt) {
			cl.mu.Unlock()
			return pc
		}
		cl.mu.Unlock()
		pc.c.Close()
		cl.discard(pc)
		cl.mu.Lock()
	}
	cl.mu.Unlock()
	return nil
}

// newConn gives a dialed connection its buffers.
func (cl *Client) newConn(c net.Conn, err error) (*clientConn, error) {
	if err != nil {
		return nil, err
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(c)
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(c)
	pc := &clientConn{c: c, br: br, bw: bw}
	if cl.lifeTime > 0 {
		pc.expireAt = clock.Mono() + int64(cl.lifeTime)
	}
	return pc, nil
}

// evictOne closes the least recently used idle connection, if any, so that
// its slot of the endpoint's connection limit goes to another pool.
func (cl *Client) evictOne() bool {
	cl.mu.Lock()
	if len(cl.idle) == 0 {
		cl.mu.Unlock()
		return false
	}
	pc := cl.idle[0]
	cl.idle = append(cl.idle[:0], cl.idle[1:]...)
	cl.mu.Unlock()
	pc.c.Close()
	cl.discard(pc)
	return true
}

// put returns a connection whose exchange finished cleanly to the pool,
// or closes it when the pool is full or the connection has outlived its
// lifetime.
func (cl *Client) put(pc *clientConn) {
	now := clock.Mono()
	pc.idleAt = now
	cl.mu.Lock()
	if !cl.closed && len(cl.idle) < cl.maxIdle && (pc.expireAt == 0 || now < pc.expireAt) {
		cl.idle = append(cl.idle, pc)
		cl.mu.Unlock()
		if cl.limit != nil {
			cl.limit.idled()
		}
		return
	}
	cl.mu.Unlock()
	pc.c.Close()
	cl.discard(pc)
}

// discard releases a closed connection's buffers.
func (cl *Client) discard(pc *clientConn) {
	if pc.br != nil {
		pc.br.Reset(nil)
		readerPool.Put(pc.br)
		pc.br = nil
	}
	if pc.bw != nil {
		pc.bw.Reset(nil)
		writerPool.Put(pc.bw)
		pc.bw = nil
	}
}

// CloseIdleConnections implements router.Transport. The client stays
// usable; later requests dial again.
func (cl *Client) CloseIdleConnections() {
	cl.mu.Lock()
	idle := cl.idle
	cl.idle = nil
	cl.mu.Unlock()
	for _, pc := range idle {
		pc.c.Close()
		cl.discard(pc)
	}
	cl.fallback.CloseIdleConnections()
}

// roundTrip does one exchange on pc. wrote reports whether any of the
// request may have reached the endpoint.
func (pc *clientConn) roundTrip(cl *Client, req *http.Request) (resp *http.Response, wrote bool, err error) {
	return pc.exchange(cl, req, false)
}

// exchange sends req on the connection and reads its response. With
// written, the caller has already put the request head in pc.bw (the
// express lane writes it from the caller's raw head); req then only
// stands for it: its method and context govern how the response is read.
func (pc *clientConn) exchange(cl *Client, req *http.Request, written bool) (resp *http.Response, wrote bool, err error) {
	ctx := req.Context()
	stop := func() bool { return true }
	if ctx.Done() != nil {
		// Cancelling the request (caller gone, timeout) unblocks any read
		// or write on the connection.
		stop = context.AfterFunc(ctx, func() { pc.c.SetDeadline(aLongTimeAgo) })
	}
	// The common case is written without Request.Write's allocations
	// (reqwrite.go); header and flush are one write either way.
	if !written && !writeRequestHead(pc.bw, req) {
		if err := req.Write(pc.bw); err != nil {
			stop()
			return nil, true, ctxErr(ctx, err)
		}
	}
	if err := pc.bw.Flush(); err != nil {
		stop()
		return nil, true, ctxErr(ctx, err)
	}
	return pc.receive(cl, req, stop)
}

// receive reads the response to req, sent on pc; stop ends the
// cancellation hook of req's context.
func (pc *clientConn) receive(cl *Client, req *http.Request, stop func() bool) (resp *http.Response, wrote bool, err error) {
	ctx := req.Context()
	// The common head is parsed here (respread.go); anything else by
	// net/http.
	fr, fast := readResponseHead(pc.br, req)
	if fast {
		resp = &fr.Response
	}
	for !fast {
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			stop()
			return nil, true, ctxErr(ctx, err)
		}
		// Interim responses (103 Early Hints...) are not forwarded on
		// the fast path; the final response follows.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				stop()
				return nil, true, errors.New("endpoint switched protocols without being asked to")
			}
			continue
		}
		break
	}
	reusable := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		if !stop() {
			// The cancellation fired: the deadline may be set, do not reuse.
			reusable = false
		}
		if reusable {
			cl.put(pc)
		} else {
			pc.c.Close()
			cl.discard(pc)
		}
		return resp, true, nil
	}
	var cb *connBody
	if fast {
		cb = &fr.cb
	} else {
		cb = new(connBody)
	}
	*cb = connBody{rc: resp.Body, pc: pc, cl: cl, stop: stop, reusable: reusable}
	resp.Body = cb
	return resp, true, nil
}

// ctxErr prefers the context's error, which says why a connection was
// interrupted.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

var aLongTimeAgo = time.Unix(1, 0)

// connBody is a fast-path response body: at EOF its connection goes back
// to the pool; closed early, the connection is closed (draining an
// unknown amount of data would stall the caller).
type connBody struct {
	rc       io.ReadCloser
	pc       *clientConn
	cl       *Client
	stop     func() bool
	reusable bool
	done     bool

	// The router's end-of-response hook (router.BodyEndHook): called once
	// with hookFailed, or true after a read error.
	hook       func(failed bool)
	hookFailed bool
}

func (b *connBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true, false)
	} else if err != nil {
		b.finish(false, true)
	}
	return n, err
}

func (b *connBody) Close() error {
	if !b.done {
		b.finish(false, false)
	}
	return nil
}

// OnEnd implements router.BodyEndHook, which saves the router a wrapper
// around every response body.
func (b *connBody) OnEnd(done func(failed bool), failed bool) bool {
	if b.done || b.hook != nil {
		return false
	}
	b.hook, b.hookFailed = done, failed
	return true
}

// finish releases the connection: to the pool after a clean EOF, closed
// otherwise; then it calls the hook.
func (b *connBody) finish(eof, readErr bool) {
	b.done = true
	if b.hook != nil {
		defer b.hook(b.hookFailed || readErr)
	}
	// stop reports false when the cancellation already fired (and may
	// have set a deadline on the connection): then it is not reused.
	if b.stop() && eof && b.reusable {
		b.cl.put(b.pc)
		return
	}
	b.pc.c.Close()
	b.cl.discard(b.pc)
}
