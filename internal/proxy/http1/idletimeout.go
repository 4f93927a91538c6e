package http1

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/clock"
)

// The server's session limits (Linkerd's servers[].serverSession):
// idleTimeMs is the fallback server's IdleTimeout, which reapIdle also
// enforces on fast-path connections; lifeTimeMs is SetLifeTime.

// reapIdle enforces the fallback server's IdleTimeout (ReadTimeout when
// zero, as net/http does) on fast-path connections: one that has waited
// longer than that for its next request is closed. Rather than a read
// deadline per request, one ticker per server keeps a coarse clock that
// connections stamp when they go idle, and sweeps the idle ones; a
// connection is closed between one and two ticks after its timeout. With
// a lifetime set (SetLifeTime), the sweep also closes an idle connection
// that has outlived it. It returns when the server is shut down or
// closed.
func (s *Server) reapIdle() {
	d := s.fallback.IdleTimeout
	if d == 0 {
		d = s.fallback.ReadTimeout
	}
	life := s.lifeTime
	period := d
	if life > 0 && (period <= 0 || life < period) {
		period = life
	}
	if period <= 0 {
		return
	}
	tick := min(max(period/4, 10*time.Millisecond), time.Second)
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
			var mono int64
			if life > 0 {
				mono = clock.Mono()
			}
			s.mu.Lock()
			for fc := range s.conns {
				if !fc.idle.Load() {
					continue
				}
				if d > 0 && fc.idleSince.Load() < limit || fc.expireAt != 0 && mono >= fc.expireAt {
					fc.c.Close()
				}
			}
			s.mu.Unlock()
		}
	}
}

// SetLifeTime bounds the life of every connection the server accepts
// (serverSession.lifeTimeMs): a connection is closed after the response
// during which it reached age d, never in the middle of one, and at once
// when it is found idle past that age. It must be called before Serve;
// zero (the default) sets no bound.
//
// On the fast path the response that ends a connection's life carries
// Connection: close when the age is reached by the time its head is
// written; a response whose body was still streaming when it was reached
// ends with the connection closed instead. A connection handed to the
// fallback server gets Connection: close on the first response to a
// request that starts past the age, is closed after the response during
// which it reached the age, and, when idle at that age, is closed then.
func (s *Server) SetLifeTime(d time.Duration) {
	if d <= 0 {
		return
	}
	s.lifeTime = d
	next := s.fallback.Handler
	s.fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pc, ok := r.Context().Value(connCtxKey{}).(*prefixConn); ok && pc.expired() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	prev := s.fallback.ConnState
	s.fallback.ConnState = func(c net.Conn, st http.ConnState) {
		if pc, ok := c.(*prefixConn); ok && pc.expireAt != 0 {
			pc.sessionState(st)
		}
		if prev != nil {
			prev(c, st)
		}
	}
}

// connLife is the lifetime state of a connection handed to the fallback
// server, driven by the server's ConnState hook.
type connLife struct {
	expireAt int64 // clock.Mono; 0: no lifetime
	idle     atomic.Bool
	timer    atomic.Pointer[time.Timer] // armed the first time the connection goes idle
}

func (p *prefixConn) expired() bool {
	return p.expireAt != 0 && clock.Mono() >= p.expireAt
}

// sessionState follows the connection's state: one that goes idle past its
// age is closed; the first time it goes idle before, a timer is armed to
// close it if it is idle when that age comes. ConnState is called from
// the connection's own goroutine, one state at a time.
func (p *prefixConn) sessionState(st http.ConnState) {
	switch st {
	case http.StateActive:
		p.idle.Store(false)
	case http.StateIdle:
		p.idle.Store(true)
		left := p.expireAt - clock.Mono()
		if left <= 0 {
			p.Close()
			return
		}
		if p.timer.Load() == nil {
			p.timer.Store(time.AfterFunc(time.Duration(left), func() {
				if p.idle.Load() {
					p.Close()
				}
			}))
		}
	case http.StateClosed, http.StateHijacked:
		if t := p.timer.Load(); t != nil {
			t.Stop()
		}
	}
}
