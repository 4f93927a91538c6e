package middleware

import (
	"context"
	"net"
	"time"
)

// Dialer returns an http.Transport DialContext that gives each connection
// attempt connectTimeout (0: only the request's context bounds it) and
// wraps every failure in *ConnectError, so retries and the proxy know the
// request was never written. base may be nil.
func Dialer(connectTimeout time.Duration, base *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if base == nil {
		base = &net.Dialer{KeepAlive: 30 * time.Second}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if connectTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, connectTimeout)
			defer cancel()
		}
		c, err := base.DialContext(ctx, network, addr)
		if err != nil {
			return nil, &ConnectError{Addr: addr, Err: err}
		}
		return c, nil
	}
}
