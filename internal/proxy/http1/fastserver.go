package http1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/clock"
	"github.com/linnet-mesh/linnet/internal/proxy/accept"
)

// Server serves a router's HTTP/1.1 listener. Requests without a body,
// Expect or Upgrade — the common case of a proxy's traffic — are read and
// answered on the connection's goroutine by a minimal ResponseWriter. The
// first request on a connection that needs more (a request body, 100
// continue, a protocol upgrade, oversized headers) hands the
// connection, with the bytes already read, to a net/http Server, which
// serves it from then on with its full machinery.
//
// The fast path exists because net/http's per-request machinery (a
// cancellable context, a background read to notice the client leaving,
// deadlines) costs a proxy more CPU than its own work. What it gives up:
// a caller that disconnects while its request waits for the endpoint is
// noticed when the response is written, not before.
type Server struct {
	handler  http.Handler
	log      *slog.Logger
	fallback *http.Server
	handoff  *chanListener

	// Idle connection workers take new connections from work until quit
	// is closed (workers.go).
	work     chan *fastConn
	quit     chan struct{}
	quitOnce sync.Once

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*fastConn]struct{}
	closing bool
	wg      sync.WaitGroup
	// clock is a coarse now (unix ns) kept by reapIdle (idletimeout.go).
	clock atomic.Int64
	// lifeTime bounds a connection's life (SetLifeTime; 0: unbounded).
	lifeTime time.Duration
	// express is the handler's express lane (SetExpress; nil: none).
	express *express
}

// SetExpress lets plain requests take h's express lane (lane.go), when
// h's configuration has one; h must be the handler s serves, under its
// tracing middleware. Call it before Serve.
func (s *Server) SetExpress(h *Handler) { s.express = h.express }

// NewServer returns a server for h; fallback is the net/http server (its
// Handler is set to h) that takes over connections the fast path does
// not handle.
func NewServer(h http.Handler, fallback *http.Server, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fallback.Handler = h
	fallback.ConnContext = chainConnContext(fallback.ConnContext)
	return &Server{handler: h, log: log, fallback: fallback, handoff: newChanListener(), conns: map[*fastConn]struct{}{},
		work: make(chan *fastConn), quit: make(chan struct{})}
}

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.handoff.addr = ln.Addr()
	s.mu.Unlock()
	go func() { _ = s.fallback.Serve(s.handoff) }()
	s.clock.Store(time.Now().UnixNano())
	go s.reapIdle()
	return accept.Loop(ln, accept.Doubling, s.isClosing, func(c net.Conn) bool {
		fc := &fastConn{c: c}
		if s.lifeTime > 0 {
			fc.expireAt = clock.Mono() + int64(s.lifeTime)
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			return true // the next Accept fails on the closed listener
		}
		s.conns[fc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.dispatch(fc)
		return true
	})
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, closes idle connections, and waits (until ctx
// ends) for requests in flight to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.ln != nil {
		s.ln.Close()
	}
	for fc := range s.conns {
		if fc.idle.Load() {
			fc.c.Close()
		}
	}
	s.mu.Unlock()
	s.handoff.Close()
	s.stopWorkers()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	ferr := s.fallback.Shutdown(ctx)
	select {
	case <-done:
		return ferr
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	if s.ln != nil {
		s.ln.Close()
	}
	for fc := range s.conns {
		fc.c.Close()
	}
	s.mu.Unlock()
	s.handoff.Close()
	s.stopWorkers()
	return s.fallback.Close()
}

type fastConn struct {
	c    net.Conn
	idle atomic.Bool
	// idleSince is the server clock when the connection last went idle.
	idleSince atomic.Int64
	// expireAt is the clock.Mono time the connection's life ends (0:
	// never; SetLifeTime).
	expireAt int64
}

var (
	connReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	connWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func (s *Server) forget(fc *fastConn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) serveConn(fc *fastConn) {
	defer s.forget(fc)
	c := fc.c
	br := connReaderPool.Get().(*bufio.Reader)
	br.Reset(c)
	bw := connWriterPool.Get().(*bufio.Writer)
	bw.Reset(c)
	handedOff := false
	defer func() {
		bw.Reset(nil)
		connWriterPool.Put(bw)
		if !handedOff {
			br.Reset(nil)
			connReaderPool.Put(br)
			c.Close()
		}
	}()
	remote := c.RemoteAddr().String()
	var w *fastWriter
	var lr *laneRequest // the express lane's stand-in request
	for first := true; ; first = false {
		fc.idle.Store(true)
		fc.idleSince.Store(s.clock.Load())
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return
		}
		head, ok, err := s.readHead(c, br, first)
		fc.idle.Store(false)
		if err != nil {
			return
		}
		if !ok || !simpleRequest(head) {
			handedOff = s.handOff(c, br, fc.expireAt)
			return
		}
		if s.express != nil {
			if w == nil {
				w = &fastWriter{h: make(http.Header, 8), conn: c, expireAt: fc.expireAt}
				lr = new(laneRequest)
			}
			if handled, keep := s.express.serveExpress(w, br, bw, head, lr, remote); handled {
				if !keep {
					return
				}
				continue
			}
		}
		req, ok := readRequestHead(br, head)
		if !ok {
			req, err = http.ReadRequest(br)
		}
		if err != nil {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			return
		}
		req.RemoteAddr = remote
		// One writer and header map per connection, reset per request:
		// a ResponseWriter is not used after its handler returns.
		if w == nil {
			w = &fastWriter{h: make(http.Header, 8), conn: c, expireAt: fc.expireAt}
		}
		w.reset(bw, req)
		if !s.serve(w, req) || w.finish() != nil || w.closeAfter {
			return
		}
	}
}

// serve runs the handler; false means the connection must be closed (the
// handler aborted the response).
func (s *Server) serve(w *fastWriter, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				s.log.Error("panic serving request", "request", req.Method+" "+req.RequestURI, "panic", v)
			}
			ok = false
		}
	}()
	s.handler.ServeHTTP(w, req)
	return true
}

// handOff gives the connection, with what was already read, to the
// net/http server. It reports whether it did.
func (s *Server) handOff(c net.Conn, br *bufio.Reader, expireAt int64) bool {
	buffered, _ := br.Peek(br.Buffered())
	pc := &prefixConn{Conn: c, prefix: append([]byte(nil), buffered...)}
	pc.expireAt = expireAt
	return s.handoff.push(pc)
}

// peekHead returns the request head (request line and header block, up to
// and including the blank line) without consuming it. ok is false when
// the head does not fit the buffer.
func peekHead(br *bufio.Reader) (head []byte, ok bool, err error) {
	if _, err := br.Peek(1); err != nil {
		return nil, false, err
	}
	for {
		b, _ := br.Peek(br.Buffered())
		if i := bytes.Index(b, crlfcrlf); i >= 0 {
			return b[:i+4], true, nil
		}
		if br.Buffered() >= br.Size() {
			return nil, false, nil
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, false, nil
			}
			return nil, false, err
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// simpleRequest reports whether a request head describes an HTTP/1.1 or
// HTTP/1.0 request without a body, Expect or Upgrade.
func simpleRequest(head []byte) bool {
	eol := bytes.IndexByte(head, '\n')
	if eol < 10 || !bytes.HasSuffix(head[:eol], []byte(" HTTP/1.1\r")) && !bytes.HasSuffix(head[:eol], []byte(" HTTP/1.0\r")) {
		return false
	}
	rest := head[eol+1:]
	for len(rest) > 0 {
		n := bytes.IndexByte(rest, '\n')
		if n < 0 {
			return false
		}
		line := rest[:n]
		rest = rest[n+1:]
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		switch name := line[:colon]; {
		case asciiEqualFold(name, "content-length"), asciiEqualFold(name, "transfer-encoding"),
			asciiEqualFold(name, "expect"), asciiEqualFold(name, "upgrade"):
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// prefixConn replays bytes read before a handoff.
type prefixConn struct {
	net.Conn
	prefix []byte
	connLife
}

// NetConn returns the wrapped connection (as tls.Conn does), so that its
// TLS state can be found under the prefix.
func (p *prefixConn) NetConn() net.Conn { return p.Conn }

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// chanListener is the net.Listener the fallback server accepts handed-off
// connections from.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr {
	if l.addr == nil {
		return &net.TCPAddr{}
	}
	return l.addr
}

// fastWriter is the ResponseWriter of the fast path: HTTP/1.1 framing by
// Content-Length or chunked encoding (with trailers), nothing else. It
// adds no headers of its own but Date (when absent) and the framing.
type fastWriter struct {
	bw          *bufio.Writer
	req         *http.Request
	h           http.Header // the response header: own, or adopted
	own         http.Header // the connection's own map, reused
	wroteHeader bool
	status      int
	noBody      bool
	chunked     bool
	cl          int64 // declared Content-Length, -1 if none
	written     int64
	closeAfter  bool
	err         error
	// conn is the connection the writer answers on (edge.go reads it).
	conn net.Conn
	// expireAt is its fastConn's: the response written at or after it
	// is the connection's last (0: no lifetime).
	expireAt int64
}

func (w *fastWriter) Header() http.Header { return w.h }

// reset readies w for the next request on its connection, keeping its
// (cleared) header map.
func (w *fastWriter) reset(bw *bufio.Writer, req *http.Request) {
	h := w.own
	if h == nil {
		h = w.h
	}
	clear(h)
	*w = fastWriter{bw: bw, req: req, h: h, own: h, cl: -1, conn: w.conn, expireAt: w.expireAt}
}

// adoptHeader makes h, a header map the handler built and will not use
// again, the response header, instead of a copy into the writer's own
// map. It declines once anything is in the header or the head is
// written.
func (w *fastWriter) adoptHeader(h http.Header) bool {
	if w.wroteHeader || len(w.h) > 0 || h == nil {
		return false
	}
	if w.own == nil {
		w.own = w.h
	}
	w.h = h
	return true
}

// writeHeaderFields is WriteHeader for a response the express lane relays
// without a header map (lane.go): a status from 200 to 499 but 204 and
// 304, a Content-Length of length, the endpoint's fields as listed (none
// of them Transfer-Encoding or Connection), a Date when they have none,
// then extra (whole field lines), as WriteHeader writes the same response
// from a map.
func (w *fastWriter) writeHeaderFields(code int, length int64, fields []field, hasDate bool, extra string) {
	w.wroteHeader = true
	w.status = code
	w.cl = length
	if w.req.Close || w.expireAt != 0 && clock.Mono() >= w.expireAt {
		w.closeAfter = true
	}
	bw := w.bw
	w.writeStatus(code, hasDate)
	for _, f := range fields {
		bw.WriteString(f.k)
		bw.WriteString(": ")
		writeHeaderValue(bw, f.v)
		bw.WriteString("\r\n")
	}
	bw.WriteString(extra)
	w.endHead()
}

// writeStatus writes the status line and, when the response has none, a
// Date field.
func (w *fastWriter) writeStatus(code int, hasDate bool) {
	bw := w.bw
	bw.WriteString("HTTP/1.1 ")
	writeUint(bw, uint64(code), 10)
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	if !hasDate {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
}

// endHead writes the Connection field the response needs, if any, and the
// blank line that ends the head.
func (w *fastWriter) endHead() {
	if w.closeAfter {
		w.bw.WriteString("Connection: close\r\n")
	} else if w.req.ProtoMajor == 1 && w.req.ProtoMinor == 0 {
		// An HTTP/1.0 client asked for keep-alive (else req.Close).
		w.bw.WriteString("Connection: keep-alive\r\n")
	}
	w.bw.WriteString("\r\n")
}

func (w *fastWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 200 {
		// Interim responses are not forwarded on the fast path.
		return
	}
	w.wroteHeader = true
	w.status = code
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if vs := w.h["Content-Length"]; len(vs) > 0 {
		if n, err := strconv.ParseInt(vs[0], 10, 64); err == nil && n >= 0 {
			w.cl = n
		} else {
			delete(w.h, "Content-Length")
		}
	}
	if w.req.Close || w.expireAt != 0 && clock.Mono() >= w.expireAt {
		w.closeAfter = true
	}
	http10 := w.req.ProtoMajor == 1 && w.req.ProtoMinor == 0
	if w.cl < 0 && !w.noBody {
		if http10 {
			// HTTP/1.0 has no chunked encoding: the end of the
			// connection ends the body.
			w.closeAfter = true
		} else {
			w.chunked = true
		}
	}
	bw := w.bw
	_, hasDate := w.h["Date"]
	w.writeStatus(code, hasDate)
	for k, vs := range w.h {
		if k == "Transfer-Encoding" || k == "Connection" || len(k) > len(http.TrailerPrefix) && k[:len(http.TrailerPrefix)] == http.TrailerPrefix {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeHeaderValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	w.endHead()
}

// writeHeaderValue writes v with CR and LF turned into spaces, as net/http
// does, so that a value cannot split the response.
func writeHeaderValue(bw *bufio.Writer, v string) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			bw.WriteByte(' ')
		} else {
			bw.WriteByte(c)
		}
	}
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody || len(p) == 0 {
		return len(p), nil
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		w.err = http.ErrContentLength
		return 0, w.err
	}
	w.written += int64(len(p))
	if w.chunked {
		writeUint(w.bw, uint64(len(p)), 16)
		w.bw.WriteString("\r\n")
	}
	if _, err := w.bw.Write(p); err != nil {
		w.err = err
		return 0, err
	}
	if w.chunked {
		w.bw.WriteString("\r\n")
	}
	return len(p), nil
}

// Flush implements http.Flusher.
func (w *fastWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.bw.Flush(); err != nil && w.err == nil {
		w.err = err
	}
}

// finish ends the response: the last chunk and trailers, then a flush.
func (w *fastWriter) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked {
		w.bw.WriteString("0\r\n")
		for _, k := range w.h["Trailer"] {
			for _, v := range w.h[http.CanonicalHeaderKey(k)] {
				w.bw.WriteString(http.CanonicalHeaderKey(k))
				w.bw.WriteString(": ")
				writeHeaderValue(w.bw, v)
				w.bw.WriteString("\r\n")
			}
		}
		w.bw.WriteString("\r\n")
	}
	if w.cl >= 0 && w.written < w.cl && !w.noBody {
		// A short body: the caller can only tell if the connection ends.
		w.closeAfter = true
	}
	if w.expireAt != 0 && !w.closeAfter && clock.Mono() >= w.expireAt {
		// The connection reached its age while the body streamed.
		w.closeAfter = true
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	return w.err
}

// httpDate is the Date header value, cached for the current second.
func httpDate() []byte {
	now := time.Now().Unix()
	if d := dateCache.Load(); d != nil && d.sec == now {
		return d.b
	}
	d := &cachedDate{sec: now, b: time.Unix(now, 0).UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}

type cachedDate struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[cachedDate]

var _ http.Flusher = (*fastWriter)(nil)
