package http1

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"

	"github.com/linnet-mesh/linnet/internal/proxy"
)

// The optional edge headers (proxy.ServerEdge) need the inbound
// connection: its local address for Forwarded's `by`, its client
// certificate for x-forwarded-client-cert. The fast path's writer knows
// its connection; the net/http fallback puts it in the request context
// (chainConnContext). Nothing here runs unless a server enables one of
// those headers.

type connCtxKey struct{}

// chainConnContext returns a ConnContext hook that records the
// connection in the context, after running next (if any).
func chainConnContext(next func(context.Context, net.Conn) context.Context) func(context.Context, net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		if next != nil {
			ctx = next(ctx, c)
		}
		return context.WithValue(ctx, connCtxKey{}, c)
	}
}

// connInfo describes the connection r arrived on.
func connInfo(w http.ResponseWriter, r *http.Request) proxy.Conn {
	var c net.Conn
	if fw := fastWriterOf(w); fw != nil {
		c = fw.conn
	} else {
		c, _ = r.Context().Value(connCtxKey{}).(net.Conn)
	}
	var info proxy.Conn
	if c == nil {
		info.Local, _ = r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		return info
	}
	info.Local = c.LocalAddr()
	if cs, ok := tlsState(c); ok && len(cs.PeerCertificates) > 0 {
		info.PeerCertDER = cs.PeerCertificates[0].Raw
	}
	return info
}

// fastWriterOf returns the fast path's writer under w, looking through
// wrappers that expose the writer they wrap with Unwrap (as the tracer's
// does, and as http.ResponseController expects); nil if w is not one.
func fastWriterOf(w http.ResponseWriter) *fastWriter {
	for range 8 {
		if fw, ok := w.(*fastWriter); ok {
			return fw
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// tlsState finds the TLS state of c, looking through wrappers that
// expose the connection they wrap with NetConn (as tls.Conn does).
func tlsState(c net.Conn) (tls.ConnectionState, bool) {
	for range 8 {
		if t, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
			return t.ConnectionState(), true
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	return tls.ConnectionState{}, false
}
