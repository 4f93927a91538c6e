// Package mux is Finagle's Mux session protocol, which ThriftMux runs
// Thrift over: the frame codec (shared by namerd's ThriftMux interface and
// the thriftmux router), and client and server sessions that multiplex
// dispatches by tag.
//
// Every frame is size:4 type:1 tag:3 body; sizes and numbers are
// big-endian. Linnet negotiates no session features (no fragmentation,
// compression or TLS upgrade), so a frame is always one whole message.
package mux

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Message types. Finagle writes Tdiscarded as BadTdiscarded and Rerr as
// BadRerr (their historical codes); both spellings are read.
const (
	Treq          int8 = 1
	Rreq          int8 = -1
	Tdispatch     int8 = 2
	Rdispatch     int8 = -2
	Tdrain        int8 = 64
	Rdrain        int8 = -64
	Tping         int8 = 65
	Rping         int8 = -65
	Tdiscarded    int8 = 66
	Rdiscarded    int8 = -66
	Tlease        int8 = 67
	Tinit         int8 = 68
	Rinit         int8 = -68
	Rerr          int8 = -128
	BadTdiscarded int8 = -62
	BadRerr       int8 = 127
)

// Reply statuses of Rdispatch and Rreq.
const (
	StatusOK    = 0
	StatusError = 1
	StatusNack  = 2
)

const (
	// TagMSB is the fragment flag of a tag.
	TagMSB = 1 << 23
	// MaxTag is the largest tag.
	MaxTag = TagMSB - 1
	// InitTag is the tag of the handshake (and of pings).
	InitTag = 1
	// CanTinit is the marker Rerr body Finagle clients send, and expect
	// echoed, to learn that the server understands Tinit.
	CanTinit = "tinit check"
	// Version is the only session version there is.
	Version = 1
	// MaxFrameSize bounds a frame, in bytes.
	MaxFrameSize = 16 << 20
)

// Mux context keys Finagle propagates.
const (
	TraceContextKey = "com.twitter.finagle.tracing.TraceContext"
	DeadlineKey     = "com.twitter.finagle.Deadline"
)

// Msg is one decoded frame.
type Msg struct {
	Type int8
	Tag  uint32
	Body []byte
}

// ErrShortFrame is a frame too short for its type and tag.
var ErrShortFrame = errors.New("mux frame shorter than its header")

// FrameTooLargeError is a frame announcing more than the limit.
type FrameTooLargeError struct{ Size, Max uint32 }

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the %d-byte limit", e.Size, e.Max)
}

// ReadFrame reads a size-prefixed frame (mux or framed Thrift) of at most
// MaxFrameSize bytes.
func ReadFrame(r *bufio.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrameSize {
		return nil, &FrameTooLargeError{Size: n, Max: MaxFrameSize}
	}
	if n <= 64<<10 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	// A large frame is read as it arrives, so that a peer cannot make us
	// allocate MaxFrameSize just by announcing it.
	b, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if len(b) != int(n) {
		return nil, io.ErrUnexpectedEOF
	}
	return b, nil
}

// Parse splits a frame into its type, tag and body.
func Parse(frame []byte) (Msg, error) {
	if len(frame) < 4 {
		return Msg{}, ErrShortFrame
	}
	return Msg{
		Type: int8(frame[0]),
		Tag:  uint32(frame[1])<<16 | uint32(frame[2])<<8 | uint32(frame[3]),
		Body: frame[4:],
	}, nil
}

// AppendFrame appends a whole frame to b: its size, type, tag and the
// parts of its body.
func AppendFrame(b []byte, typ int8, tag uint32, parts ...[]byte) []byte {
	n := 4
	for _, p := range parts {
		n += len(p)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, byte(typ), byte(tag>>16), byte(tag>>8), byte(tag))
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// writeTimeout bounds the write of one frame.
const writeTimeout = 30 * time.Second

// writeFrame writes one frame on a session's connection nc, mu
// serialising the session's writes.
func writeFrame(mu *sync.Mutex, nc net.Conn, typ int8, tag uint32, parts ...[]byte) error {
	b := AppendFrame(nil, typ, tag, parts...)
	mu.Lock()
	defer mu.Unlock()
	_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := nc.Write(b)
	return err
}

// Context is one Mux context entry (a key and its marshalled value).
type Context struct{ Key, Value []byte }

// Dentry is one entry of a Tdispatch dtab.
type Dentry struct{ Prefix, Dst string }

// Dispatch is a decoded Tdispatch.
type Dispatch struct {
	Contexts []Context
	// Dst is Finagle's destination name ("" when unset).
	Dst string
	// Dtab is the caller's local dtab.
	Dtab []Dentry
	Body []byte
}

type cursor struct {
	b   []byte
	err error
}

func (c *cursor) take(n int) []byte {
	if c.err != nil {
		return nil
	}
	if n > len(c.b) {
		c.err = io.ErrUnexpectedEOF
		return nil
	}
	out := c.b[:n]
	c.b = c.b[n:]
	return out
}

func (c *cursor) u8() int {
	b := c.take(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (c *cursor) u16() int {
	b := c.take(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

func (c *cursor) u32() int {
	b := c.take(4)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint32(b))
}

// ParseTdispatch decodes nc:2 (key~2 val~2){nc} dst~2 nd:2 (from~2 to~2){nd} body.
func ParseTdispatch(body []byte) (Dispatch, error) {
	c := &cursor{b: body}
	var d Dispatch
	for n := c.u16(); n > 0 && c.err == nil; n-- {
		k := c.take(c.u16())
		v := c.take(c.u16())
		d.Contexts = append(d.Contexts, Context{Key: k, Value: v})
	}
	d.Dst = string(c.take(c.u16()))
	for n := c.u16(); n > 0 && c.err == nil; n-- {
		from := string(c.take(c.u16()))
		to := string(c.take(c.u16()))
		d.Dtab = append(d.Dtab, Dentry{Prefix: from, Dst: to})
	}
	if c.err != nil {
		return Dispatch{}, fmt.Errorf("malformed Tdispatch: %w", c.err)
	}
	d.Body = c.b
	return d, nil
}

// errField is a Tdispatch field longer than its 2-byte length allows.
var errField = errors.New("mux field longer than 65535 bytes")

func appendField(b []byte, s []byte) ([]byte, error) {
	if len(s) > 0xffff {
		return b, errField
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...), nil
}

// AppendTdispatchHeader appends the header of a Tdispatch body (all of
// it but the payload, which follows it).
func AppendTdispatchHeader(b []byte, d *Dispatch) ([]byte, error) {
	if len(d.Contexts) > 0xffff || len(d.Dtab) > 0xffff {
		return b, errors.New("too many mux contexts or dtab entries")
	}
	var err error
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Contexts)))
	for _, c := range d.Contexts {
		if b, err = appendField(b, c.Key); err != nil {
			return b, err
		}
		if b, err = appendField(b, c.Value); err != nil {
			return b, err
		}
	}
	if b, err = appendField(b, []byte(d.Dst)); err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Dtab)))
	for _, e := range d.Dtab {
		if b, err = appendField(b, []byte(e.Prefix)); err != nil {
			return b, err
		}
		if b, err = appendField(b, []byte(e.Dst)); err != nil {
			return b, err
		}
	}
	return b, nil
}

// ParseTreq decodes n:1 (key:1 value~1){n} body.
func ParseTreq(body []byte) ([]byte, error) {
	c := &cursor{b: body}
	for n := c.u8(); n > 0 && c.err == nil; n-- {
		c.take(1)
		c.take(c.u8())
	}
	if c.err != nil {
		return nil, fmt.Errorf("malformed Treq: %w", c.err)
	}
	return c.b, nil
}

// ParseRdispatch decodes status:1 nctx:2 (key~2 value~2){nctx} body.
func ParseRdispatch(body []byte) (status int, reply []byte, err error) {
	c := &cursor{b: body}
	status = c.u8()
	for n := c.u16(); n > 0 && c.err == nil; n-- {
		c.take(c.u16())
		c.take(c.u16())
	}
	if c.err != nil {
		return 0, nil, fmt.Errorf("malformed Rdispatch: %w", c.err)
	}
	return status, c.b, nil
}

// RdispatchBody returns the body of an Rdispatch without contexts, or of
// an Rreq (rtyp Rreq): the status, then the reply (or the error message).
func RdispatchBody(rtyp int8, status byte, reply []byte) []byte {
	if rtyp == Rreq {
		return append([]byte{status}, reply...)
	}
	return append([]byte{status, 0, 0}, reply...)
}

// EmptyTdispatchHeader is the header of a Tdispatch with no contexts, no
// destination and no dtab.
var EmptyTdispatchHeader = []byte{0, 0, 0, 0, 0, 0}

// InitBody encodes version:2 (key~4 value~4)*.
func InitBody(version int, headers [][2][]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(version))
	for _, h := range headers {
		b = binary.BigEndian.AppendUint32(b, uint32(len(h[0])))
		b = append(b, h[0]...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(h[1])))
		b = append(b, h[1]...)
	}
	return b
}

// ParseInit decodes an init body.
func ParseInit(body []byte) (version int, headers [][2][]byte, err error) {
	c := &cursor{b: body}
	version = c.u16()
	for c.err == nil && len(c.b) > 0 {
		k := c.take(c.u32())
		v := c.take(c.u32())
		headers = append(headers, [2][]byte{k, v})
	}
	if c.err != nil {
		return 0, nil, fmt.Errorf("malformed init message: %w", c.err)
	}
	return version, headers, nil
}

// DiscardedBody is the body of a Tdiscarded: the discarded tag, then why.
func DiscardedBody(tag uint32, why string) []byte {
	return append([]byte{byte(tag >> 16), byte(tag >> 8), byte(tag)}, why...)
}

// ParseDiscarded decodes a Tdiscarded body.
func ParseDiscarded(body []byte) (tag uint32, why string, err error) {
	if len(body) < 3 {
		return 0, "", errors.New("short Tdiscarded")
	}
	return uint32(body[0])<<16 | uint32(body[1])<<8 | uint32(body[2]), string(body[3:]), nil
}

// IsThriftCall reports whether a first frame is a strict TBinaryProtocol
// message (version 0x8001) rather than a mux message: what a plain framed
// Thrift client sends. (As mux, it would be an Rerr with tag >= 0x10000,
// which no mux peer sends first.)
func IsThriftCall(frame []byte) bool {
	return len(frame) >= 4 && frame[0] == 0x80 && frame[1] == 0x01 && frame[2] == 0
}

// Deadline is Finagle's Deadline context: when the request was sent and
// when it must be done.
type Deadline struct{ Timestamp, Deadline time.Time }

// EncodeDeadline marshals a Deadline as Finagle does: the timestamp and
// the deadline, in nanoseconds since the epoch, 8 bytes each.
func EncodeDeadline(d Deadline) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(d.Timestamp.UnixNano()))
	return binary.BigEndian.AppendUint64(b, uint64(d.Deadline.UnixNano()))
}

// ParseDeadline unmarshals a Deadline context value.
func ParseDeadline(b []byte) (Deadline, bool) {
	if len(b) != 16 {
		return Deadline{}, false
	}
	return Deadline{
		Timestamp: time.Unix(0, int64(binary.BigEndian.Uint64(b))),
		Deadline:  time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))),
	}, true
}
