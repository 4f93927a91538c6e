package http1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/linnet-mesh/linnet/internal/clock"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/router"
)

// The express lane (docs/performance.md, "Fifth pass"): a plain request —
// GET, HTTP/1.1 or 1.0, an origin-form target, no body, no context header
// but a trace, no Via, no hop-by-hop field but Connection: keep-alive or
// close — to a
// route that needs nothing per request but its statistics is written from
// its raw head to an endpoint connection and answered without building
// the request objects and without the tiers' middleware. The router does
// the routing and the bookkeeping (router.Express), the tracer the trace
// ids (tracing.Tracer.ExpressHop), and the response goes through the same
// code as on the full stack (Handler.respond). Anything else, it leaves
// untouched to the full stack, which serves it as before; the differential
// test (internal/routerd, TestExpressLaneDiff) holds the two to the same
// observable behaviour.

// ExpressParams turns the express lane on for a Handler.
type ExpressParams struct {
	// Trace returns the outbound l5d-ctx-trace and l5d-reqid values of
	// an unsampled hop (one string split at n), or ok false when the hop
	// must be traced by the full stack (tracing.Tracer.ExpressHop).
	Trace func(ctxTrace, sample string) (vals string, n int, ok bool)
}

// express is a Handler's lane; nil when its configuration needs the full
// stack for every request (edge options, an access log, request records,
// identifiers other than the Host header's, no tracer hook).
type express struct {
	h      *Handler
	id     *headerToken
	trace  func(ctxTrace, sample string) (string, int, bool)
	served interface{ Inc() }
}

func newExpress(h *Handler) *express {
	p := h.p
	if p.Express == nil || p.Express.Trace == nil || p.Router == nil || p.Edge != nil ||
		p.AccessLog != nil || p.Recorder != nil || !p.Tracing {
		return nil
	}
	id, ok := singleHostIdentifier(p.Identifier)
	if !ok {
		return nil
	}
	return &express{h: h, id: id, trace: p.Express.Trace, served: p.Scope.Counter("express")}
}

// singleHostIdentifier returns the identifier if it is one
// io.l5d.header.token on Host.
func singleHostIdentifier(id proxy.Identifier) (*headerToken, bool) {
	if ids, ok := id.(proxy.Identifiers); ok {
		if len(ids) != 1 {
			return nil, false
		}
		id = ids[0]
	}
	ht, ok := id.(*headerToken)
	return ht, ok && ht.header == "Host"
}

// laneRequest stands for the caller's request where the shared code wants
// an *http.Request (classifiers, error mapping, the response writer); one
// per connection, reused.
type laneRequest struct {
	req  http.Request
	url  url.URL
	hdr  http.Header
	head plainHead
	resp plainResponse
}

// plainHead is what the lane reads from a request head.
type plainHead struct {
	target, host     string
	ctxTrace, sample string
	// http10: the request is HTTP/1.0; close: the caller's connection
	// ends after the response (as http.Request.Close).
	http10, close bool
	// via are the request's Via values (another router's hop), which the
	// outbound Via continues; depth counts their entries.
	via   [maxVia]string
	nvia  int
	depth int
	// fields are the field lines the outbound head copies: all but Host,
	// Connection and l5d-* (their canonical names and trimmed values).
	fields [maxPlainFields]field
	nf     int
}

type field struct{ k, v string }

// maxPlainFields bounds the fields of a plain head (more: the full stack),
// maxVia its Via fields.
const (
	maxPlainFields = 32
	maxVia         = 4
)

// parsePlain reads head as a plain request, or reports false. With clear
// (a clearContext server), l5d-* fields are dropped rather than refused,
// and an inbound trace is not joined.
func parsePlain(ph *plainHead, head []byte, clear bool) bool {
	if len(head) < 18 || !bytes.HasPrefix(head, []byte("GET /")) {
		return false
	}
	eol := bytes.IndexByte(head, '\n')
	if eol < 0 || head[eol-1] != '\r' {
		return false
	}
	line := head[:eol-1]
	sp := bytes.LastIndexByte(line, ' ')
	if sp <= 4 {
		return false
	}
	http10 := false
	switch string(line[sp+1:]) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		http10 = true
	default:
		return false
	}
	if _, _, ok := plainTarget(line[4:sp]); !ok {
		return false
	}
	s := string(head)
	*ph = plainHead{target: s[4:sp], http10: http10, close: http10}
	hosts := 0
	for off := eol + 1; off < len(s)-2; {
		key, v, next, ok := nextField(s, off)
		if !ok {
			return false
		}
		off = next
		switch key {
		case "Host":
			if hosts++; hosts > 1 || !httpguts.ValidHostHeader(v) || v == "" {
				return false
			}
			ph.host = v
		case "Connection":
			switch {
			case strings.EqualFold(v, "keep-alive"):
				ph.close = false
			case strings.EqualFold(v, "close"):
				ph.close = true
			default:
				return false // it names fields to drop: the full stack
			}
		case "Via":
			if ph.nvia == maxVia {
				return false
			}
			ph.via[ph.nvia] = v
			ph.nvia++
			ph.depth += strings.Count(v, ",") + 1
		case "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
			"Transfer-Encoding", "Upgrade", "Expect", "Content-Length", "Pragma":
			return false
		default:
			if !isContextField(key) {
				if ph.nf == maxPlainFields {
					return false
				}
				ph.fields[ph.nf] = field{key, v}
				ph.nf++
				continue
			}
			if clear {
				continue
			}
			switch key {
			case "L5d-Dst-Service", "L5d-Dst-Client", "L5d-Dst-Residual", "L5d-Reqid":
				// Another router's hop: the tiers and the tracer write
				// their own.
			case "L5d-Ctx-Trace":
				if ph.ctxTrace != "" {
					return false
				}
				ph.ctxTrace = v
			case "L5d-Sample":
				if ph.sample != "" {
					return false
				}
				ph.sample = v
			default:
				return false // l5d-dtab, l5d-ctx-dtab, l5d-ctx-deadline, ...: the full stack
			}
		}
	}
	return hosts == 1
}

// isContextField reports whether a canonical field name is one of the
// l5d-* fields the edge reads, replaces or strips.
func isContextField(k string) bool { return len(k) >= 4 && k[:4] == "L5d-" }

// writeFields writes the fields the outbound head copies.
func (ph *plainHead) writeFields(bw *bufio.Writer) {
	for _, f := range ph.fields[:ph.nf] {
		writeField(bw, f.k, f.v)
	}
}

// serveExpress serves one request from its head if it can take the lane,
// reporting handled false (and having read and written nothing) if not.
// keep is false when the connection must close after it.
func (e *express) serveExpress(w *fastWriter, br *bufio.Reader, bw *bufio.Writer, head []byte, lr *laneRequest, remote string) (handled, keep bool) {
	h := e.h
	ph := &lr.head
	if !parsePlain(ph, head, h.p.ClearContext) || ph.depth > h.p.MaxCallDepth {
		return false, true
	}
	name, idErr := e.id.identifyHost(ph.host)
	if idErr != nil {
		return false, true
	}
	now := clock.Mono()
	route, ok := h.p.Router.Express(name, now)
	if !ok {
		return false, true
	}
	if max := h.p.MaxConcurrentRequests; max > 0 {
		n := h.inflight.Add(1)
		defer h.inflight.Add(-1)
		if n > int64(max) {
			return false, true
		}
	}
	trace, n, ok := e.trace(ph.ctxTrace, ph.sample)
	if !ok {
		return false, true
	}
	t0 := h.stats.StartAt(now)
	at, ok := route.Attempt(now)
	if !ok {
		h.stats.Abandon()
		return false, true
	}
	// Committed: from here the request is answered on the lane.
	br.Discard(len(head))
	e.served.Inc()
	req := lr.set(ph, remote)
	tSvc := route.Begin(now)
	at.Start(now)
	retries := 0
	var resp *http.Response
	var err error
	for {
		var raw *plainResponse
		resp, raw, err = e.attempt(at, ph, route, trace, n, req, &lr.resp)
		if raw != nil {
			// A plain success: relayed as it is read.
			now = clock.Mono()
			at.EndStatus(now, raw.status)
			route.EndStatus(tSvc, now, raw.status, retries)
			h.stats.EndAt(t0, now, raw.status, "")
			w.reset(bw, req)
			if !e.relay(w, at, raw) {
				w.finish()
				return true, false
			}
			return true, w.finish() == nil && !w.closeAfter
		}
		var retryable bool
		if err != nil {
			retryable = route.RetryableError(req, err)
		} else {
			cl := route.Classify(req, resp)
			retryable = !cl.Success && cl.Retryable
		}
		now = clock.Mono()
		if !retryable {
			at.End(now, req, resp, err)
			at.Done(resp, err)
			break
		}
		// A retryable failure: retried as the retry module would, to a
		// new pick, when the budget allows. (Should no attempt be
		// possible right after the budget granted one, the response is
		// answered as it is, where the full stack would answer the
		// routing error.)
		next, ok := (*router.ExpressAttempt)(nil), route.Retry()
		if ok {
			next, ok = route.Attempt(now)
		}
		if !ok {
			at.End(now, req, resp, err)
			at.Done(resp, err)
			break
		}
		at.End(now, req, resp, err)
		at.Done(resp, err)
		if resp != nil {
			discardBody(resp)
		}
		retries++
		at = next
		at.Start(now)
	}
	route.End(tSvc, now, req, resp, err, retries)
	if err != nil {
		status := proxy.MapError(req, err).Status
		h.stats.EndAt(t0, now, status, router.FailureKind(err))
		w.reset(bw, req)
		h.fail(w, req, err)
		return true, w.finish() == nil && !w.closeAfter
	}
	status, kind := router.Outcome(req, resp, nil, router.DefaultClassifier)
	h.stats.EndAt(t0, now, status, kind)
	w.reset(bw, req)
	if !e.respond(w, req, resp) {
		return true, false
	}
	return true, w.finish() == nil && !w.closeAfter
}

// respond writes resp as the full stack does; false when the response was
// cut (the connection must close).
func (e *express) respond(w *fastWriter, req *http.Request, resp *http.Response) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				e.h.p.Logger.Error("panic serving request", "request", req.Method+" "+req.RequestURI, "panic", v)
			}
			ok = false
		}
	}()
	e.h.respond(w, req, resp)
	return true
}

// conn returns a connection to the attempt's endpoint from its pool.
func (e *express) conn(at *router.ExpressAttempt) (*clientConn, error) {
	cl, ok := clientOf(at.Transport)
	if !ok {
		return nil, errNotLaneTransport
	}
	return cl.get(bgCtx)
}

var errNotLaneTransport = errors.New("the endpoint's transport is not an HTTP/1.1 client")

// bgCtx is the context of the lane's exchanges: a plain request has no
// deadline, and a caller that goes away is seen on the next write.
var bgCtx = context.Background()

// clientOf finds the *Client under a client-tier transport (the router's
// tracing wraps it).
func clientOf(t router.Transport) (*Client, bool) {
	for {
		switch x := t.(type) {
		case *Client:
			return x, true
		case interface{ Base() router.Transport }:
			t = x.Base()
		default:
			return nil, false
		}
	}
}

// attempt sends the request to the attempt's endpoint and reads the
// response: relayed as it is read (raw, non-nil) when it is plain, else
// built. A connection that cannot be made is requeued to another endpoint
// of the bound name, as the client tier's requeue module does.
func (e *express) attempt(at *router.ExpressAttempt, ph *plainHead, route *router.ExpressRoute, trace string, n int, req *http.Request, rr *plainResponse) (*http.Response, *plainResponse, error) {
	for {
		pc, err := e.conn(at)
		if err == nil {
			var resp *http.Response
			var raw *plainResponse
			if resp, raw, err = e.send(at, pc, ph, route, trace, n, req, rr); err == nil {
				return resp, raw, nil
			}
		}
		if !middleware.IsNotWritten(err) {
			return nil, nil, err
		}
		if !at.Requeue() {
			return nil, nil, at.ConnectError(err)
		}
	}
}

// send writes the outbound head on pc (or, if pc was pooled and fails
// before an answer, on one fresh connection, as Client.RoundTrip does) and
// reads the response head: a plain one (plainResponse) is left to relay,
// any other is read as the full stack reads it.
func (e *express) send(at *router.ExpressAttempt, pc *clientConn, ph *plainHead, route *router.ExpressRoute, trace string, n int, req *http.Request, rr *plainResponse) (*http.Response, *plainResponse, error) {
	cl, _ := clientOf(at.Transport)
	for attempt := 0; ; attempt++ {
		bw := pc.bw
		bw.WriteString("GET ")
		bw.WriteString(ph.target)
		bw.WriteString(" HTTP/1.1\r\nHost: ")
		if at.Host != "" {
			bw.WriteString(at.Host)
		} else {
			bw.WriteString(ph.host)
		}
		bw.WriteString("\r\n")
		ph.writeFields(bw)
		bw.WriteString("Via: ")
		for _, v := range ph.via[:ph.nvia] {
			bw.WriteString(v)
			bw.WriteString(", ")
		}
		if ph.http10 {
			bw.WriteString("1.0 linkerd\r\nL5d-Dst-Service: ")
		} else {
			bw.WriteString("1.1 linkerd\r\nL5d-Dst-Service: ")
		}
		bw.WriteString(route.DstService())
		bw.WriteString("\r\nL5d-Dst-Client: ")
		bw.WriteString(at.DstClient)
		if at.DstResidual != "" {
			bw.WriteString("\r\nL5d-Dst-Residual: ")
			bw.WriteString(at.DstResidual)
		}
		bw.WriteString("\r\nL5d-Ctx-Trace: ")
		bw.WriteString(trace[:n])
		bw.WriteString("\r\nL5d-Reqid: ")
		bw.WriteString(trace[n:])
		bw.WriteString("\r\n\r\n")
		err := bw.Flush()
		if err == nil {
			if route.RelaysBelow500() {
				if head, ok, perr := peekHead(pc.br); perr == nil && ok && rr.parse(head, e.h.p.ClearContext) {
					pc.br.Discard(len(head))
					rr.pc, rr.cl = pc, cl
					return nil, rr, nil
				}
			}
			var resp *http.Response
			if resp, _, err = pc.receive(cl, req, noStop); err == nil {
				return resp, nil, nil
			}
		}
		pc.c.Close()
		cl.discard(pc)
		if !pc.reused || attempt > 0 {
			return nil, nil, err
		}
		if pc, err = cl.get(bgCtx); err != nil {
			return nil, nil, err
		}
	}
}

func noStop() bool { return true }

// set readies the stand-in request for ph.
func (lr *laneRequest) set(ph *plainHead, remote string) *http.Request {
	path, query, _ := strings.Cut(ph.target, "?")
	lr.url = url.URL{Path: path, RawQuery: query}
	if lr.hdr == nil {
		lr.hdr = http.Header{}
	}
	clear(lr.hdr)
	lr.req = http.Request{
		Method: http.MethodGet, URL: &lr.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Close: ph.close,
		Header: lr.hdr, Host: ph.host, RemoteAddr: remote, RequestURI: ph.target, Body: http.NoBody,
	}
	if ph.http10 {
		lr.req.Proto, lr.req.ProtoMinor = "HTTP/1.0", 0
	}
	return &lr.req
}

// discardBody drains a little of a retried response so that its
// connection can be reused, and closes it.
func discardBody(resp *http.Response) {
	if resp.Body == nil {
		return
	}
	var buf [512]byte
	for i := 0; i < 8; i++ {
		if _, err := resp.Body.Read(buf[:]); err != nil {
			break
		}
	}
	resp.Body.Close()
}

// plainResponse is an endpoint response the lane relays as it reads it,
// without building an http.Response: HTTP/1.1, a status from 200 to 499
// but 204 and 304 (a success for every classifier Linnet has; the route
// checks that, router.ExpressRoute.RelaysBelow500), a Content-Length, no
// Via, no framing or protocol fields, and Connection only keep-alive or
// close. Anything else is read by the full stack's code.
type plainResponse struct {
	status  int
	length  int64
	close   bool // the endpoint closes the connection after it
	hasDate bool
	fields  [maxPlainFields]field
	nf      int
	pc      *clientConn
	cl      *Client
}

// parse reads a response head (its lines end in CRLF) into rr, or reports
// false. With clear (a clearContext server) every l5d-* field is dropped,
// else the endpoint's l5d-success-class and l5d-retryable are (the
// classification replaces them).
func (rr *plainResponse) parse(b []byte, clear bool) bool {
	eol := bytes.IndexByte(b, '\n')
	if eol < 13 || !bytes.HasPrefix(b, []byte("HTTP/1.1 ")) || b[eol-1] != '\r' {
		return false
	}
	code := 0
	for _, c := range b[9:12] {
		if c < '0' || c > '9' {
			return false
		}
		code = code*10 + int(c-'0')
	}
	line := b[:eol-1]
	if code < 200 || code >= 500 || code == http.StatusNoContent || code == http.StatusNotModified ||
		len(line) > 12 && line[12] != ' ' || !plainValue(line[12:]) {
		return false
	}
	s := string(b)
	*rr = plainResponse{status: code, length: -1}
	for off := eol + 1; off < len(s)-2; {
		key, v, next, ok := nextField(s, off)
		if !ok {
			return false
		}
		off = next
		switch key {
		case "Content-Length":
			if rr.length >= 0 || len(v) == 0 || len(v) > 18 {
				return false
			}
			var n int64
			for i := 0; i < len(v); i++ {
				if v[i] < '0' || v[i] > '9' {
					return false
				}
				n = n*10 + int64(v[i]-'0')
			}
			rr.length = n
		case "Connection":
			switch {
			case strings.EqualFold(v, "close"):
				rr.close = true
			case !strings.EqualFold(v, "keep-alive"):
				return false // it names fields to drop: the full stack
			}
			continue
		case "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te":
			continue // hop-by-hop, dropped as RemoveHopByHop does
		case "Trailer", "Transfer-Encoding", "Upgrade", "Pragma", "Via":
			return false
		case "Date":
			rr.hasDate = true
		case "L5d-Success-Class", "L5d-Retryable":
			continue
		default:
			if clear && isContextField(key) {
				continue
			}
		}
		if rr.nf == maxPlainFields {
			return false
		}
		rr.fields[rr.nf] = field{key, v}
		rr.nf++
	}
	return rr.length >= 0
}

// relay writes rr to the caller through w, as Handler.respond would write
// the same response built (its fields, then Via and l5d-success-class,
// which a clearContext server strips), copies its body, returns the
// endpoint connection to its pool, and reports whether the caller's
// connection may carry another request.
func (e *express) relay(w *fastWriter, at *router.ExpressAttempt, rr *plainResponse) (keep bool) {
	extra := "Via: 1.1 linkerd\r\nL5d-Success-Class: 1.0\r\n"
	if e.h.p.ClearContext {
		extra = "Via: 1.1 linkerd\r\n"
	}
	w.writeHeaderFields(rr.status, rr.length, rr.fields[:rr.nf], rr.hasDate, extra)
	pc := rr.pc
	rr.pc = nil
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	left, clientGone := rr.length, false
	for left > 0 {
		n, err := pc.br.Read(buf[:min(int64(len(buf)), left)])
		if n > 0 {
			left -= int64(n)
			if !clientGone {
				if _, werr := w.Write(buf[:n]); werr != nil {
					clientGone = true
				}
			}
		}
		if err != nil {
			break
		}
		if clientGone {
			break
		}
	}
	switch {
	case left > 0 && !clientGone:
		// The endpoint broke off the body: the caller's response is cut
		// short, as on the full stack, and the endpoint is charged.
		pc.c.Close()
		rr.cl.discard(pc)
		at.Finish(true)
		return false
	case left > 0:
		pc.c.Close()
		rr.cl.discard(pc)
		at.Finish(false)
		return false
	}
	if rr.close {
		pc.c.Close()
		rr.cl.discard(pc)
	} else {
		rr.cl.put(pc)
	}
	at.Finish(false)
	return !clientGone
}
