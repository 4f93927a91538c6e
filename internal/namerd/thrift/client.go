package thrift

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
)

// ErrSessionClosed is returned by calls on a session that ended.
var ErrSessionClosed = errors.New("thriftmux session closed")

// ErrNack is returned when the server refused a request (mux NACK).
var ErrNack = errors.New("request refused by namerd (nack)")

// session is a client ThriftMux session: many calls multiplexed on one
// connection.
type session struct {
	c   net.Conn
	wmu sync.Mutex

	mu       sync.Mutex
	calls    map[uint32]chan muxMsg
	nextTag  uint32
	err      error // why the session ended
	draining bool
	done     chan struct{}
	pong     chan struct{}
}

// handshakeTimeout bounds the session handshake.
const handshakeTimeout = 10 * time.Second

// newSession runs the mux handshake on c (Finagle's: the "tinit check"
// marker, then Tinit/Rinit without session features) and starts reading.
// The handshake ends by handshakeTimeout, by ctx's deadline if sooner, or
// when ctx ends.
func newSession(ctx context.Context, c net.Conn) (*session, error) {
	br := bufio.NewReaderSize(c, 16<<10)
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	// A past deadline interrupts the handshake's reads and writes.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(appendMux(nil, muxBadRerr, tinitTag, []byte(canTinit))); err != nil {
		return nil, err
	}
	f, err := readFrame(br)
	if err != nil {
		return nil, fmt.Errorf("mux handshake: %w", err)
	}
	m, err := parseMux(f)
	if err != nil {
		return nil, fmt.Errorf("mux handshake: %w", err)
	}
	if (m.typ == muxRerr || m.typ == muxBadRerr) && m.tag == tinitTag && string(m.body) == canTinit {
		if _, err := c.Write(appendMux(nil, muxTinit, tinitTag, initBody(muxVersion, nil))); err != nil {
			return nil, err
		}
		if f, err = readFrame(br); err != nil {
			return nil, fmt.Errorf("mux handshake: %w", err)
		}
		if m, err = parseMux(f); err != nil {
			return nil, fmt.Errorf("mux handshake: %w", err)
		}
		switch m.typ {
		case muxRinit:
			v, _, err := parseInit(m.body)
			if err != nil {
				return nil, err
			}
			if v != muxVersion {
				return nil, fmt.Errorf("mux handshake: server accepted version %d, want %d", v, muxVersion)
			}
		case muxRerr, muxBadRerr:
			return nil, fmt.Errorf("mux handshake refused: %s", m.body)
		default:
			return nil, fmt.Errorf("mux handshake: unexpected message type %d", m.typ)
		}
	}
	// Otherwise the peer predates handshakes: plain mux.
	if !stop() {
		return nil, fmt.Errorf("mux handshake: %w", context.Cause(ctx))
	}
	_ = c.SetDeadline(time.Time{})
	s := &session{c: c, calls: map[uint32]chan muxMsg{}, nextTag: 2, done: make(chan struct{}), pong: make(chan struct{}, 1)}
	go s.read(br)
	return s, nil
}

func (s *session) write(typ int8, tag uint32, parts ...[]byte) error {
	b := appendMux(nil, typ, tag, parts...)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.c.Write(b)
	return err
}

func (s *session) read(br *bufio.Reader) {
	err := func() error {
		for {
			f, err := readFrame(br)
			if err != nil {
				return err
			}
			m, err := parseMux(f)
			if err != nil {
				return err
			}
			switch m.typ {
			case muxRdispatch, muxRreq, muxRerr, muxBadRerr, muxRdiscarded:
				s.mu.Lock()
				ch := s.calls[m.tag]
				delete(s.calls, m.tag)
				s.mu.Unlock()
				if ch != nil {
					ch <- m
				}
			case muxTping:
				if err := s.write(muxRping, m.tag); err != nil {
					return err
				}
			case muxRping:
				select {
				case s.pong <- struct{}{}:
				default:
				}
			case muxTdrain:
				s.mu.Lock()
				s.draining = true
				s.mu.Unlock()
				if err := s.write(muxRdrain, m.tag); err != nil {
					return err
				}
			}
		}
	}()
	s.close(err)
}

// close ends the session; pending calls fail with err.
func (s *session) close(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	if err == nil {
		err = ErrSessionClosed
	}
	s.err = fmt.Errorf("%w: %w", ErrSessionClosed, err)
	calls := s.calls
	s.calls = nil
	close(s.done)
	s.mu.Unlock()
	_ = s.c.Close()
	for _, ch := range calls {
		if ch != nil { // nil: a discarded call nobody waits for
			close(ch)
		}
	}
}

// usable reports whether new calls may start on the session.
func (s *session) usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil && !s.draining
}

// ping sends a Tping and waits up to timeout for the Rping.
func (s *session) ping(timeout time.Duration) error {
	select {
	case <-s.pong:
	default:
	}
	if err := s.write(muxTping, tinitTag); err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.pong:
		return nil
	case <-s.done:
		return ErrSessionClosed
	case <-t.C:
		return fmt.Errorf("no ping answer within %v", timeout)
	}
}

// call makes one Thrift call: the success value is decoded into ok, a
// declared exception into exc (and returned). When ctx ends first the
// call is discarded (Tdiscarded) and ctx's error returned.
func (s *session) call(ctx context.Context, method string, args writer, ok reader, exc interface {
	reader
	error
}) error {
	ch := make(chan muxMsg, 1)
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	var tag uint32
	free := false
	for range maxTag {
		tag = s.nextTag
		if s.nextTag++; s.nextTag > maxTag {
			s.nextTag = 2
		}
		if _, used := s.calls[tag]; !used {
			free = true
			break
		}
	}
	if !free {
		s.mu.Unlock()
		return errors.New("no free mux tag: too many requests in flight")
	}
	s.calls[tag] = ch
	s.mu.Unlock()
	msg, err := encodeMessage(method, thrift.CALL, int32(tag), 1, args)
	if err != nil {
		s.forget(tag)
		return err
	}
	if err := s.write(muxTdispatch, tag, tdispatchHeader, msg); err != nil {
		s.forget(tag)
		s.close(err)
		return err
	}
	select {
	case <-ctx.Done():
		// The tag stays reserved until the server answers the discarded
		// request, so that its late answer cannot reach a new call.
		s.mu.Lock()
		if _, pending := s.calls[tag]; pending && s.calls != nil {
			s.calls[tag] = nil
		}
		s.mu.Unlock()
		why := []byte("interrupted")
		_ = s.write(muxBadTdiscard, 0, []byte{byte(tag >> 16), byte(tag >> 8), byte(tag)}, why)
		return ctx.Err()
	case m, open := <-ch:
		if !open {
			s.mu.Lock()
			err := s.err
			s.mu.Unlock()
			return err
		}
		switch m.typ {
		case muxRdispatch:
			status, body, err := parseRdispatch(m.body)
			if err != nil {
				s.close(err)
				return err
			}
			return replyStatus(status, body, method, ok, exc)
		case muxRreq:
			if len(m.body) < 1 {
				return fmt.Errorf("%w: empty Rreq", ErrBadReply)
			}
			return replyStatus(int(m.body[0]), m.body[1:], method, ok, exc)
		case muxRdiscarded:
			return errors.New("namerd discarded the request")
		default: // Rerr
			return fmt.Errorf("namerd session error: %s", m.body)
		}
	}
}

func replyStatus(status int, body []byte, method string, ok reader, exc interface {
	reader
	error
}) error {
	switch status {
	case statusOK:
		return decodeReply(body, method, ok, exc)
	case statusNack:
		return ErrNack
	default:
		return fmt.Errorf("namerd failed the %s request: %s", method, body)
	}
}

func (s *session) forget(tag uint32) {
	s.mu.Lock()
	if s.calls != nil {
		delete(s.calls, tag)
	}
	s.mu.Unlock()
}

// muxClient keeps one session to namerd, redialled when it ends.
type muxClient struct {
	dial func(ctx context.Context) (net.Conn, error)
	tls  *tls.Config

	// Failure detection: a Tping every pingEvery; no answer within
	// pingTimeout closes the session (Finagle's failure detector).
	pingEvery, pingTimeout time.Duration

	// lock guards sess; it is a channel so that a caller waiting while
	// another dials gives up when its ctx ends.
	lock chan struct{}
	sess *session
}

func newMuxClient(dial func(ctx context.Context) (net.Conn, error), tc *tls.Config, pingEvery, pingTimeout time.Duration) *muxClient {
	return &muxClient{dial: dial, tls: tc, pingEvery: pingEvery, pingTimeout: pingTimeout, lock: make(chan struct{}, 1)}
}

// get returns a usable session, dialling one when needed.
func (c *muxClient) get(ctx context.Context) (*session, error) {
	select {
	case c.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.lock }()
	if c.sess != nil && c.sess.usable() {
		return c.sess, nil
	}
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	conn, err := c.dial(dctx)
	if err != nil {
		return nil, err
	}
	if c.tls != nil {
		tc := tls.Client(conn, c.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("tls handshake with namerd: %w", err)
		}
		conn = tc
	}
	s, err := newSession(dctx, conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	c.sess = s
	if c.pingEvery > 0 {
		go c.watchdog(s)
	}
	return s, nil
}

func (c *muxClient) watchdog(s *session) {
	t := time.NewTicker(c.pingEvery)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			if err := s.ping(c.pingTimeout); err != nil {
				s.close(err)
				return
			}
		}
	}
}

// call runs one call on the current session.
func (c *muxClient) call(ctx context.Context, method string, args writer, ok reader, exc interface {
	reader
	error
}) error {
	s, err := c.get(ctx)
	if err != nil {
		return err
	}
	return s.call(ctx, method, args, ok, exc)
}

func (c *muxClient) close() {
	c.lock <- struct{}{}
	defer func() { <-c.lock }()
	if c.sess != nil {
		c.sess.close(nil)
	}
}
