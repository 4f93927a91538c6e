package mux

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ErrNotMux says the peer does not speak Mux: it closed the connection
// or answered the handshake with something else (a Thrift message). The
// caller may speak plain Thrift to it instead.
var ErrNotMux = errors.New("the peer does not speak mux")

// SessionError says a session ended before a dispatch was answered.
type SessionError struct {
	Err error
	// Written says the dispatch had been sent.
	Written bool
}

func (e *SessionError) Error() string { return "mux session ended: " + e.Err.Error() }
func (e *SessionError) Unwrap() error { return e.Err }

// ClientSession is the client side of one Mux session: dispatches are
// multiplexed on it by tag, answered in any order.
type ClientSession struct {
	nc  net.Conn
	br  *bufio.Reader
	wmu sync.Mutex

	mu       sync.Mutex
	calls    map[uint32]chan Msg
	nextTag  uint32
	err      error // why the session ended
	draining bool  // the server sent Tdrain: no new dispatches
	pings    []chan struct{}
	done     chan struct{}
}

// Handshake runs Finagle's handshake on nc (the marker Rerr "tinit
// check"; when the server echoes it, Tinit/Rinit) and starts the session.
// A server that answers the marker with another mux message predates
// handshakes and is spoken to without one. ErrNotMux: the peer is no mux
// server (it closed the connection or answered in Thrift). ctx bounds the
// handshake only.
func Handshake(ctx context.Context, nc net.Conn) (*ClientSession, error) {
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	br := bufio.NewReaderSize(nc, 16<<10)
	fail := func(err error) (*ClientSession, error) {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mux handshake: %w", context.Cause(ctx))
		}
		return nil, err
	}
	if _, err := nc.Write(AppendFrame(nil, BadRerr, InitTag, []byte(CanTinit))); err != nil {
		return fail(fmt.Errorf("mux handshake: %w", err))
	}
	f, err := ReadFrame(br)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return fail(fmt.Errorf("%w (%v)", ErrNotMux, err))
		}
		return fail(fmt.Errorf("mux handshake: %w", err))
	}
	m, err := Parse(f)
	if err != nil || m.Tag != InitTag {
		// A Thrift reply (0x80 0x01 …: tag ≥ 0x10000) or garbage.
		return fail(ErrNotMux)
	}
	switch {
	case (m.Type == Rerr || m.Type == BadRerr) && string(m.Body) == CanTinit:
		if _, err := nc.Write(AppendFrame(nil, Tinit, InitTag, InitBody(Version, nil))); err != nil {
			return fail(fmt.Errorf("mux handshake: %w", err))
		}
		if f, err = ReadFrame(br); err != nil {
			return fail(fmt.Errorf("mux handshake: %w", err))
		}
		if m, err = Parse(f); err != nil {
			return fail(fmt.Errorf("mux handshake: %w", err))
		}
		switch m.Type {
		case Rinit:
			v, _, err := ParseInit(m.Body)
			if err != nil {
				return fail(fmt.Errorf("mux handshake: %w", err))
			}
			if v != Version {
				return fail(fmt.Errorf("mux handshake: server accepted version %d, want %d", v, Version))
			}
		case Rerr, BadRerr:
			return fail(fmt.Errorf("mux handshake refused: %s", m.Body))
		default:
			return fail(fmt.Errorf("mux handshake: unexpected message type %d", m.Type))
		}
	case m.Type == Rerr || m.Type == BadRerr:
		// A mux server that predates handshakes: plain mux.
	default:
		return fail(ErrNotMux)
	}
	if !stop() {
		return fail(context.Cause(ctx))
	}
	_ = nc.SetDeadline(time.Time{})
	s := &ClientSession{nc: nc, br: br, calls: map[uint32]chan Msg{}, nextTag: InitTag + 1, done: make(chan struct{})}
	go s.read()
	return s, nil
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func (s *ClientSession) write(typ int8, tag uint32, parts ...[]byte) error {
	return writeFrame(&s.wmu, s.nc, typ, tag, parts...)
}

func (s *ClientSession) read() {
	err := s.loop()
	_ = s.nc.Close()
	s.mu.Lock()
	s.err = err
	for tag, ch := range s.calls {
		close(ch)
		delete(s.calls, tag)
	}
	for _, p := range s.pings {
		close(p)
	}
	s.pings = nil
	s.mu.Unlock()
	close(s.done)
}

func (s *ClientSession) loop() error {
	for {
		f, err := ReadFrame(s.br)
		if err != nil {
			return err
		}
		m, err := Parse(f)
		if err != nil {
			return err
		}
		switch m.Type {
		case Rdispatch, Rreq, Rerr, BadRerr, Rdiscarded:
			s.mu.Lock()
			ch := s.calls[m.Tag]
			delete(s.calls, m.Tag)
			s.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		case Tping:
			if err := s.write(Rping, m.Tag); err != nil {
				return err
			}
		case Rping:
			s.mu.Lock()
			if len(s.pings) > 0 {
				close(s.pings[0])
				s.pings = s.pings[1:]
			}
			s.mu.Unlock()
		case Tdrain:
			s.mu.Lock()
			s.draining = true
			s.mu.Unlock()
			if err := s.write(Rdrain, m.Tag); err != nil {
				return err
			}
		}
	}
}

// Done is closed when the session has ended.
func (s *ClientSession) Done() <-chan struct{} { return s.done }

// Usable reports whether new dispatches may be sent: the session is up
// and the server has not asked to drain it.
func (s *ClientSession) Usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil && !s.draining
}

// Idle reports whether no dispatch is in flight.
func (s *ClientSession) Idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls) == 0
}

// Close ends the session.
func (s *ClientSession) Close() error {
	err := s.nc.Close()
	<-s.done
	return err
}

// Ping sends a Tping and waits for its Rping.
func (s *ClientSession) Ping(ctx context.Context) error {
	ch := make(chan struct{})
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return &SessionError{Err: s.err}
	}
	s.pings = append(s.pings, ch)
	s.mu.Unlock()
	if err := s.write(Tping, InitTag); err != nil {
		_ = s.nc.Close()
		return &SessionError{Err: err}
	}
	select {
	case <-ch:
		s.mu.Lock()
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return &SessionError{Err: err, Written: true}
		}
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// ErrDraining is a dispatch refused because the server drains the
// session.
var ErrDraining = errors.New("mux session draining")

// Dispatch sends a Tdispatch (its header d, its payload body) and waits
// for the reply: the status and the reply's payload (or error message).
// When ctx ends first, the request is discarded (Tdiscarded) and ctx's
// cause returned. A *SessionError says the session ended first.
func (s *ClientSession) Dispatch(ctx context.Context, d *Dispatch, body []byte) (status int, reply []byte, err error) {
	head, err := AppendTdispatchHeader(nil, d)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan Msg, 1)
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return 0, nil, &SessionError{Err: s.err}
	}
	if s.draining {
		s.mu.Unlock()
		return 0, nil, ErrDraining
	}
	tag, ok := s.freeTag()
	if !ok {
		s.mu.Unlock()
		return 0, nil, errors.New("no free mux tag: too many requests in flight")
	}
	s.calls[tag] = ch
	s.mu.Unlock()
	if err := s.write(Tdispatch, tag, head, body); err != nil {
		_ = s.nc.Close()
		return 0, nil, &SessionError{Err: err}
	}
	select {
	case m, ok := <-ch:
		if !ok {
			s.mu.Lock()
			err := s.err
			s.mu.Unlock()
			return 0, nil, &SessionError{Err: err, Written: true}
		}
		switch m.Type {
		case Rdispatch:
			st, b, err := ParseRdispatch(m.Body)
			return st, b, err
		case Rreq:
			if len(m.Body) == 0 {
				return 0, nil, errors.New("malformed Rreq")
			}
			return int(m.Body[0]), m.Body[1:], nil
		case Rdiscarded:
			return 0, nil, errors.New("mux request discarded by the server")
		default:
			return StatusError, m.Body, nil
		}
	case <-ctx.Done():
		// The tag stays reserved until the server answers (Rdiscarded
		// or its reply), which the reader then drops.
		_ = s.write(BadTdiscarded, 0, DiscardedBody(tag, context.Cause(ctx).Error()))
		return 0, nil, context.Cause(ctx)
	}
}

// freeTag returns an unused tag (s.mu held).
func (s *ClientSession) freeTag() (uint32, bool) {
	for range 1024 {
		tag := s.nextTag
		s.nextTag++
		if s.nextTag > MaxTag {
			s.nextTag = InitTag + 1
		}
		if _, used := s.calls[tag]; !used {
			return tag, true
		}
	}
	return 0, false
}
