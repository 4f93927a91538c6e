package http1

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// TransportOptions configures the client-tier transport of one endpoint.
type TransportOptions struct {
	// ConnectTimeout bounds dialing (default 3s, so that an unreachable
	// endpoint fails the request instead of hanging it for the kernel's
	// minutes-long SYN retry).
	ConnectTimeout time.Duration
	// IdleTimeout closes pooled connections idle this long (default 60s):
	// hostConnectionPool.idleTimeMs or clientSession.idleTimeMs.
	IdleTimeout time.Duration
	// LifeTime, when positive, closes a pooled connection of the fast
	// path (requests without a body) once it is that old, instead of
	// reusing it, never in the middle of an exchange
	// (clientSession.lifeTimeMs). The fallback http.Transport, which
	// carries requests with bodies, has no hook to refuse the reuse of one
	// connection: its connections are bounded by IdleTimeout only.
	LifeTime time.Duration
	// MaxIdle bounds idle pooled connections per endpoint (default 1024).
	MaxIdle int
	// MaxConns bounds connections per endpoint (0: unbounded), i.e.
	// hostConnectionPool.maxSize, and MaxWaiters the requests waiting for
	// one (0: unbounded), hostConnectionPool.maxWaiters.
	MaxConns, MaxWaiters int
	// Limit, when set, is the endpoint's connection limit, shared by every
	// pool that dials it; NewClient and NewTLSClient make one from
	// MaxConns and MaxWaiters when it is nil.
	Limit *ConnLimit
	// TLS, when set, makes every connection TLS (client `tls`; see
	// tls.go). Requests still carry http:// URLs.
	TLS *tls.Config
	// WrapConn, when set, wraps every connection made (the router counts
	// client connections with it). The wrapper must pass Close through.
	WrapConn func(net.Conn) net.Conn
}

// wrapDial applies o.WrapConn to the connections dial makes.
func wrapDial(dial func(ctx context.Context, network, addr string) (net.Conn, error), o TransportOptions) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if o.WrapConn == nil {
		return dial
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return o.WrapConn(c), nil
	}
}

// NewTransport returns an HTTP/1.1 transport with pooled keep-alive
// connections to one endpoint. It never adds headers of its own
// (no Accept-Encoding, no User-Agent) and never speaks HTTP/2.
func NewTransport(o TransportOptions) *http.Transport {
	o = o.withDefaults()
	d := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         limitDial(o.Limit, wrapDial(dialFunc(d, o), o)),
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: o.MaxIdle,
		IdleConnTimeout:     o.IdleTimeout,
		DisableCompression:  true,
		// A request with Expect: 100-continue waits this long for the
		// endpoint's 100 before its body is sent anyway.
		ExpectContinueTimeout: time.Second,
		// No HTTP/2: a non-nil empty map disables the h2 upgrade.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if o.Limit != nil {
		// The transport cannot close just one idle connection: closing
		// them all frees their slots for the pool that needs one.
		o.Limit.addEvictor(func() bool { t.CloseIdleConnections(); return false })
	}
	return t
}

func (o TransportOptions) withDefaults() TransportOptions {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 3 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.MaxIdle <= 0 {
		o.MaxIdle = 1024
	}
	if o.Limit == nil {
		o.Limit = NewConnLimit(o.MaxConns, o.MaxWaiters)
	}
	return o
}
