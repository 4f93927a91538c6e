// Package accept holds the accept loop shared by the servers of the
// request path (proxy/http1's fast server, proxy/thrift, routerd's
// thriftmux) and by namerd's Thrift interface. It imports the standard
// library only, so that any layer may use it.
package accept

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// Backoff returns how long to sleep after a timeout from Accept, given the
// previous sleep (0 after a successful Accept).
type Backoff func(prev time.Duration) time.Duration

// Doubling backs off from 5 ms, doubling up to 1 s (net/http's values).
func Doubling(prev time.Duration) time.Duration {
	return min(max(2*prev, 5*time.Millisecond), time.Second)
}

// Fixed backs off by d every time.
func Fixed(d time.Duration) Backoff {
	return func(time.Duration) time.Duration { return d }
}

// Loop accepts connections on ln and hands each to serve until Accept
// fails for good. A timeout (a net.Error whose Timeout reports true) is
// retried after sleeping for backoff's answer. Loop returns http.ErrServerClosed when Accept fails
// while closing reports the server is shutting down, or when serve
// returns false (serve has then closed the connection: the server is
// shutting down); otherwise Accept's error.
func Loop(ln net.Listener, backoff Backoff, closing func() bool, serve func(net.Conn) bool) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if closing() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = backoff(delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if !serve(nc) {
			return http.ErrServerClosed
		}
	}
}
