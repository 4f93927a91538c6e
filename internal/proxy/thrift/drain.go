package thrift

import (
	"context"
	"sync"
)

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
