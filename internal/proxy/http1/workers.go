package http1

import "time"

// Connection workers.
//
// A goroutine starts with a small stack, and the request path (server,
// tracing, router tiers, client) is deep: a new goroutine per connection
// grows its stack several times while serving its first request, and each
// growth copies the stack, decoding the stack map of every frame. For a
// caller that opens a connection per request (HTTP/1.0, ab -c4, the
// walkthrough's workload) that was a fifth of the router's CPU. So a
// goroutine that has served a connection waits a while for the next one,
// with its grown stack, instead of exiting.

// workerIdle is how long an idle worker waits for another connection.
const workerIdle = 5 * time.Second

// dispatch serves fc on an idle worker, or on a new one if none is
// waiting.
func (s *Server) dispatch(fc *fastConn) {
	select {
	case s.work <- fc:
	default:
		go s.worker(fc)
	}
}

// worker serves fc, then the connections dispatch hands it, until it has
// waited workerIdle for one or the server stops.
func (s *Server) worker(fc *fastConn) {
	var idle *time.Timer
	for {
		s.serveConn(fc)
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case fc = <-s.work:
			idle.Stop()
		case <-idle.C:
			return
		case <-s.quit:
			idle.Stop()
			return
		}
	}
}

// stopWorkers ends the idle workers (Shutdown, Close).
func (s *Server) stopWorkers() { s.quitOnce.Do(func() { close(s.quit) }) }
