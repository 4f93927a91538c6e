package http1

import "time"

// reapIdle enforces the fallback server's IdleTimeout (ReadTimeout when
// zero, as net/http does) on fast-path connections: one that has waited
// longer than that for its next request is closed. Rather than a read
// deadline per request, one ticker per server keeps a coarse clock that
// connections stamp when they go idle, and sweeps the idle ones; a
// connection is closed between one and two ticks after its timeout. It
// returns when the server is shut down or closed.
func (s *Server) reapIdle() {
	d := s.fallback.IdleTimeout
	if d == 0 {
		d = s.fallback.ReadTimeout
	}
	if d <= 0 {
		return
	}
	tick := min(max(d/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.handoff.done:
			return
		case now := <-t.C:
			ns := now.UnixNano()
			s.clock.Store(ns)
			limit := ns - int64(d) - int64(tick)
			s.mu.Lock()
			for fc := range s.conns {
				if fc.idle.Load() && fc.idleSince.Load() < limit {
					fc.c.Close()
				}
			}
			s.mu.Unlock()
		}
	}
}
