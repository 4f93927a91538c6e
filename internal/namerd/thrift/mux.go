package thrift

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Mux (Finagle's session protocol, which ThriftMux runs Thrift over):
// every frame is size:4 type:1 tag:3 body; sizes and numbers are big-endian.
// Linnet negotiates no session features (no fragmentation, compression or
// TLS upgrade), so a frame is always one whole message.

// Mux message types.
const (
	muxTreq        int8 = 1
	muxRreq        int8 = -1
	muxTdispatch   int8 = 2
	muxRdispatch   int8 = -2
	muxTdrain      int8 = 64
	muxRdrain      int8 = -64
	muxTping       int8 = 65
	muxRping       int8 = -65
	muxTdiscarded  int8 = 66
	muxRdiscarded  int8 = -66
	muxTlease      int8 = 67
	muxTinit       int8 = 68
	muxRinit       int8 = -68
	muxRerr        int8 = -128
	muxBadTdiscard int8 = -62 // what Finagle sends for Tdiscarded
	muxBadRerr     int8 = 127 // what Finagle sends for Rerr
)

// Reply statuses of Rdispatch and Rreq.
const (
	statusOK    = 0
	statusError = 1
	statusNack  = 2
)

const (
	tagMSB   = 1 << 23 // fragment flag
	maxTag   = tagMSB - 1
	tinitTag = 1
	// canTinit is the marker Rerr body Finagle clients send, and expect
	// echoed, to learn that the server understands Tinit.
	canTinit = "tinit check"
	// muxVersion is the only session version there is.
	muxVersion = 1
)

// muxMsg is one decoded mux frame.
type muxMsg struct {
	typ  int8
	tag  uint32
	body []byte
}

var errShortFrame = errors.New("mux frame shorter than its header")

// readFrame reads a size-prefixed frame (mux or framed Thrift).
func readFrame(r *bufio.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrameSize {
		return nil, fmt.Errorf("frame of %d bytes exceeds the %d-byte limit", n, MaxFrameSize)
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

func parseMux(frame []byte) (muxMsg, error) {
	if len(frame) < 4 {
		return muxMsg{}, errShortFrame
	}
	return muxMsg{
		typ:  int8(frame[0]),
		tag:  uint32(frame[1])<<16 | uint32(frame[2])<<8 | uint32(frame[3]),
		body: frame[4:],
	}, nil
}

// appendMux appends a whole mux frame to b.
func appendMux(b []byte, typ int8, tag uint32, parts ...[]byte) []byte {
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

// dispatch is a decoded Tdispatch.
type dispatch struct {
	contexts [][2][]byte
	dst      string
	dtab     [][2]string
	body     []byte
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

// parseTdispatch decodes nc:2 (key~2 val~2){nc} dst~2 nd:2 (from~2 to~2){nd} body.
func parseTdispatch(body []byte) (dispatch, error) {
	c := &cursor{b: body}
	var d dispatch
	for n := c.u16(); n > 0 && c.err == nil; n-- {
		k := c.take(c.u16())
		v := c.take(c.u16())
		d.contexts = append(d.contexts, [2][]byte{k, v})
	}
	d.dst = string(c.take(c.u16()))
	for n := c.u16(); n > 0 && c.err == nil; n-- {
		from := string(c.take(c.u16()))
		to := string(c.take(c.u16()))
		d.dtab = append(d.dtab, [2]string{from, to})
	}
	if c.err != nil {
		return dispatch{}, fmt.Errorf("malformed Tdispatch: %w", c.err)
	}
	d.body = c.b
	return d, nil
}

// parseTreq decodes n:1 (key:1 value~1){n} body.
func parseTreq(body []byte) ([]byte, error) {
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

// parseRdispatch decodes status:1 nctx:2 (key~2 value~2){nctx} body.
func parseRdispatch(body []byte) (status int, reply []byte, err error) {
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

// tdispatchHeader is the Tdispatch header Linnet clients send: no
// contexts, no destination, no dtab.
var tdispatchHeader = []byte{0, 0, 0, 0, 0, 0}

// initBody encodes version:2 (key~4 value~4)*.
func initBody(version int, headers [][2][]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(version))
	for _, h := range headers {
		b = binary.BigEndian.AppendUint32(b, uint32(len(h[0])))
		b = append(b, h[0]...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(h[1])))
		b = append(b, h[1]...)
	}
	return b
}

// parseInit decodes an init body.
func parseInit(body []byte) (version int, headers [][2][]byte, err error) {
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

// isThriftCall reports whether a first frame is a strict TBinaryProtocol
// message (version 0x8001) rather than a mux message: what a plain framed
// Thrift client sends. (As mux, it would be an Rerr with tag >= 0x10000,
// which no mux peer sends first.)
func isThriftCall(frame []byte) bool {
	return len(frame) >= 4 && frame[0] == 0x80 && frame[1] == 0x01 && frame[2] == 0
}
