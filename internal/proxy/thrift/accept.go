package thrift

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// AcceptLoop is the accept loop of Server and of the servers that hand
// connections over to one (thriftmux): it accepts connections on ln and
// hands each to serve until Accept fails for good. A timeout is retried,
// backing off from 5 ms to 1 s. It returns http.ErrServerClosed when
// Accept fails while closing reports the server is shutting down, or
// when serve returns false (it has closed nc: the server is shutting
// down); otherwise Accept's error.
func AcceptLoop(ln net.Listener, closing func() bool, serve func(net.Conn) bool) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if closing() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
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

// AwaitDrain is the wait of a server's Shutdown: it waits for conns (the
// connections still being served) until ctx is done, then calls
// closeNow and waits for them still. It returns nil, or ctx's error when
// closeNow had to cut connections short.
func AwaitDrain(ctx context.Context, conns *sync.WaitGroup, closeNow func()) error {
	done := make(chan struct{})
	go func() { conns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		closeNow()
		<-done
		return ctx.Err()
	}
}
