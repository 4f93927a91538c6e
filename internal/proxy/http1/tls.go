package http1

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// dialFunc returns how the transports of o connect: plain TCP, or, with
// o.TLS, TCP then a TLS handshake. Requests keep their http:// URL either
// way: TLS is a property of the connection (Linkerd's client `tls`), not
// of the request, so the fast path and the fallback transport both write
// plain HTTP/1.1 on whatever the dialer returns.
func dialFunc(d *net.Dialer, o TransportOptions) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if o.TLS == nil {
		return d.DialContext
	}
	cfg := o.TLS
	timeout := o.ConnectTimeout
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialTLS(ctx, d, network, addr, cfg, timeout)
	}
}

// dialTLS is tlsconf.DialTLS, returning a net.Conn.
func dialTLS(ctx context.Context, d *net.Dialer, network, addr string, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	tc, err := tlsconf.DialTLS(ctx, d, network, addr, cfg, timeout)
	if err != nil {
		return nil, err
	}
	return tc, nil
}

// TLSClient is the client-tier transport of one endpoint whose TLS
// configuration is chosen per request. Linkerd's client TLS belongs to
// the bound name, not to the endpoint: with a per-service commonName
// ("{service}.linkerd.io") several bound names reach one endpoint (a
// node's incoming router) under different names, so each distinct
// *tls.Config gets its own pool of connections (a *Client).
type TLSClient struct {
	addr   string
	o      TransportOptions
	tlsFor func(*http.Request) (*tls.Config, error)

	mu    sync.Mutex
	pools map[*tls.Config]*Client // nil key: plaintext
}

// NewTLSClient returns the transport of the endpoint addr. tlsFor returns
// the TLS configuration of a request (nil: plaintext); it must return the
// same pointer for the same configuration, since connections are pooled
// by it (h2.TLSByClient does, choosing by l5d-dst-client).
func NewTLSClient(addr string, o TransportOptions, tlsFor func(*http.Request) (*tls.Config, error)) *TLSClient {
	if o.Limit == nil {
		// One limit for the endpoint, whatever pools it gets.
		o.Limit = NewConnLimit(o.MaxConns, o.MaxWaiters)
	}
	return &TLSClient{addr: addr, o: o, tlsFor: tlsFor, pools: map[*tls.Config]*Client{}}
}

// RoundTrip implements http.RoundTripper.
func (t *TLSClient) RoundTrip(req *http.Request) (*http.Response, error) {
	cfg, err := t.tlsFor(req)
	if err != nil {
		return nil, fmt.Errorf("client TLS for %s: %w", req.Header.Get(proxy.HeaderDstClient), err)
	}
	t.mu.Lock()
	c, ok := t.pools[cfg]
	if !ok {
		o := t.o
		o.TLS = cfg
		c = NewClient(t.addr, o)
		t.pools[cfg] = c
	}
	t.mu.Unlock()
	resp, err := c.RoundTrip(req)
	var op *net.OpError
	if err != nil && cfg != nil && errors.As(err, &op) && op.Op == "remote error" {
		// In TLS 1.3 the server checks the client's certificate after
		// the client considers the handshake done, so a refusal (e.g.
		// "certificate required") arrives as an alert on the first read.
		// (crypto/tls reports alerts as a net.OpError "remote error".)
		// The server never read the request: it is a connection failure.
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: stringAddr(t.addr), Err: fmt.Errorf("TLS handshake: %w", err)}
	}
	return resp, err
}

// stringAddr is a net.Addr known by its string form.
type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }

// CloseIdleConnections implements router.Transport.
func (t *TLSClient) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.pools {
		c.CloseIdleConnections()
	}
}
