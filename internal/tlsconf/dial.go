package tlsconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// Dialer opens the TCP connection DialTLS secures (a *net.Dialer, or one
// that wraps its connections).
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialTLS connects to addr and completes a client TLS handshake within
// timeout. When cfg names no server (disableValidation without a
// commonName), SNI is the host of addr. A failed handshake (unknown
// authority, a certificate for another name, a server that wants a client
// certificate) is reported as a *net.OpError with Op "dial": the request
// has not been written, so the router answers it as a connection failure
// (502, l5d-retryable) and may requeue it.
func DialTLS(ctx context.Context, d Dialer, network, addr string, cfg *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: c.RemoteAddr(), Err: fmt.Errorf("TLS handshake: %w", err)}
	}
	return tc, nil
}
