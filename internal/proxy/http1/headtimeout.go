package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"time"
)

// DefaultReadHeaderTimeout bounds how long a router server waits for a
// request head once a connection is opened or a request has started
// arriving. A slowloris caller, trickling its headers a byte at a time to
// hold a connection (and a goroutine) forever, is cut off after it.
// Linkerd 1 had no such limit; 10s is far more than any well-behaved
// client needs to send a few kilobytes of headers.
const DefaultReadHeaderTimeout = 10 * time.Second

// readHead waits for the next request head on c, like peekHead, with the
// fallback server's ReadHeaderTimeout as a bound (none when zero):
//
//   - on a new connection (first), the clock starts at once, so a caller
//     that connects and sends nothing is dropped, as net/http does;
//   - on a kept-alive connection, waiting for the next request is idle
//     time; the clock starts when its first byte arrives.
//
// The common case — a whole head arriving in one read — sets no deadline
// at all, so the fast path keeps its per-request cost. A caller that
// started a request and ran out of time gets 408 Request Timeout and the
// connection is closed; one that sent nothing is closed silently.
func (s *Server) readHead(c net.Conn, br *bufio.Reader, first bool) (head []byte, ok bool, err error) {
	timeout := s.fallback.ReadHeaderTimeout
	armed := false
	if first && timeout > 0 && br.Buffered() == 0 {
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return nil, false, err
		}
		armed = true
	}
	if _, err := br.Peek(1); err != nil {
		return nil, false, err
	}
	if !armed && timeout > 0 && !headBuffered(br) {
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return nil, false, err
		}
		armed = true
	}
	head, ok, err = peekHead(br)
	if armed {
		if derr := c.SetReadDeadline(time.Time{}); derr != nil && err == nil {
			err = derr
		}
	}
	if err != nil && br.Buffered() > 0 && isTimeout(err) {
		io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	}
	return head, ok, err
}

// isTimeout reports whether err is a net.Error timeout. It is a function
// of its own so that the target errors.As needs escapes only on this
// error path, not on every request readHead serves.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// headBuffered reports whether a complete head, or more than fits the
// buffer, is already buffered: then peekHead will not read.
func headBuffered(br *bufio.Reader) bool {
	if br.Buffered() >= br.Size() {
		return true
	}
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, crlfcrlf)
}
