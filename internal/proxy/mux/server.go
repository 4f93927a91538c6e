package mux

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Handler answers one dispatch. It returns the reply status (StatusOK,
// StatusError with an error message as reply, or StatusNack) and the
// reply. ctx is cancelled when the client discards the request or the
// session ends.
type Handler func(ctx context.Context, d *Dispatch) (status byte, reply []byte)

// ServerSession is the server side of one Mux session: it answers the
// handshake, pings and drains itself, and runs each dispatch on its own
// goroutine, replies written as they are ready (out of order).
type ServerSession struct {
	nc net.Conn
	h  Handler
	// MaxPending bounds the dispatches in flight; more are nacked
	// (default 10000).
	maxPending int
	idle       time.Duration

	wmu sync.Mutex // serialises writes

	mu       sync.Mutex
	pending  map[uint32]*serverReq
	draining bool
	drained  chan struct{} // closed when draining and nothing is pending
	wg       sync.WaitGroup
}

type serverReq struct {
	cancel    context.CancelFunc
	discarded bool
}

// NewServerSession returns the session of nc. maxPending bounds the
// dispatches in flight (0: 10000); idle closes a session that has sent
// nothing for that long with nothing pending (0: never).
func NewServerSession(nc net.Conn, h Handler, maxPending int, idle time.Duration) *ServerSession {
	if maxPending <= 0 {
		maxPending = 10000
	}
	return &ServerSession{nc: nc, h: h, maxPending: maxPending, idle: idle,
		pending: map[uint32]*serverReq{}, drained: make(chan struct{})}
}

func (s *ServerSession) write(typ int8, tag uint32, parts ...[]byte) error {
	return writeFrame(&s.wmu, s.nc, typ, tag, parts...)
}

// Serve reads and answers the session's messages, starting with first
// (a frame already read from br), until the connection fails, ctx ends
// or the session has drained. It waits for the dispatches it started.
// The caller closes the connection.
func (s *ServerSession) Serve(ctx context.Context, br *bufio.Reader, first []byte) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.wg.Wait()
	}()
	// The reader runs apart, so that a drain can end the session while it
	// waits for a frame.
	frames := make(chan []byte)
	rerr := make(chan error, 1)
	go func() {
		for {
			if s.idle > 0 {
				_ = s.nc.SetReadDeadline(time.Now().Add(s.idle))
			}
			f, err := ReadFrame(br)
			var ne net.Error
			if err != nil && errors.As(err, &ne) && ne.Timeout() && s.busy() {
				continue // quiet, but calls are in flight: not idle
			}
			if err != nil {
				rerr <- err
				return
			}
			select {
			case frames <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := s.message(ctx, first); err != nil {
		return err
	}
	for {
		select {
		case f := <-frames:
			if err := s.message(ctx, f); err != nil {
				return err
			}
		case err := <-rerr:
			return err
		case <-s.drained:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *ServerSession) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) > 0
}

// Drain asks the client to send no more dispatches (Tdrain); Serve
// returns once those in flight are answered. New dispatches are nacked
// meanwhile (the client retries them elsewhere).
func (s *ServerSession) Drain() {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return
	}
	s.draining = true
	if len(s.pending) == 0 {
		close(s.drained)
	}
	s.mu.Unlock()
	_ = s.write(Tdrain, InitTag)
}

func (s *ServerSession) message(ctx context.Context, frame []byte) error {
	m, err := Parse(frame)
	if err != nil {
		return err
	}
	if m.Tag&TagMSB != 0 {
		return errors.New("fragmented mux message, but fragmentation was not negotiated")
	}
	switch m.Type {
	case Rerr, BadRerr:
		// The "tinit check" marker: echo it to say Tinit is understood.
		if m.Tag != 0 {
			return s.write(m.Type, m.Tag, m.Body)
		}
		return nil
	case Tinit:
		v, _, err := ParseInit(m.Body)
		if err != nil {
			return err
		}
		if v != Version {
			return s.write(BadRerr, m.Tag, fmt.Appendf(nil, "unsupported version %d, expected %d", v, Version))
		}
		// No session features are offered.
		return s.write(Rinit, m.Tag, InitBody(Version, nil))
	case Tping:
		return s.write(Rping, m.Tag)
	case Tdrain:
		return s.write(Rdrain, m.Tag)
	case Tdiscarded, BadTdiscarded:
		which, _, err := ParseDiscarded(m.Body)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if r := s.pending[which]; r != nil {
			r.discarded = true
			r.cancel()
		}
		s.mu.Unlock()
		return nil
	case Tdispatch, Treq:
		return s.dispatch(ctx, m)
	case Rdrain, Rping, Rdiscarded, Tlease, Rinit:
		return nil
	}
	if m.Type > 0 && m.Tag != 0 {
		return s.write(BadRerr, m.Tag, fmt.Appendf(nil, "unknown message type %d", m.Type))
	}
	return nil
}

func (s *ServerSession) dispatch(ctx context.Context, m Msg) error {
	if m.Tag == 0 {
		return errors.New("request with the marker tag 0")
	}
	var d Dispatch
	rtyp := Rdispatch
	if m.Type == Tdispatch {
		var err error
		if d, err = ParseTdispatch(m.Body); err != nil {
			return err
		}
	} else {
		rtyp = Rreq
		var err error
		if d.Body, err = ParseTreq(m.Body); err != nil {
			return err
		}
	}
	rctx, rcancel := context.WithCancel(ctx)
	r := &serverReq{cancel: rcancel}
	s.mu.Lock()
	_, dup := s.pending[m.Tag]
	refuse := s.draining || len(s.pending) >= s.maxPending
	if !dup && !refuse {
		s.pending[m.Tag] = r
	}
	s.mu.Unlock()
	switch {
	case dup:
		rcancel()
		return fmt.Errorf("tag %d is already in use", m.Tag)
	case refuse:
		rcancel()
		return s.write(rtyp, m.Tag, RdispatchBody(rtyp, StatusNack, nil))
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer rcancel()
		status, reply := s.h(rctx, &d)
		s.mu.Lock()
		delete(s.pending, m.Tag)
		discarded := r.discarded
		if s.draining && len(s.pending) == 0 {
			select {
			case <-s.drained:
			default:
				defer close(s.drained)
			}
		}
		s.mu.Unlock()
		switch {
		case discarded:
			_ = s.write(Rdiscarded, m.Tag)
		case ctx.Err() != nil:
			// The session is ending.
		default:
			_ = s.write(rtyp, m.Tag, RdispatchBody(rtyp, status, reply))
		}
	}()
	return nil
}
