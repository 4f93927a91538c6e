package thrift

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"unicode/utf8"
)

// Protocol is a Thrift wire protocol: how a message header and its
// payload are encoded.
type Protocol uint8

// The protocols of `thriftProtocol`.
const (
	Binary Protocol = iota
	Compact
)

// ParseProtocol reads a `thriftProtocol` value (binary or compact).
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "binary":
		return Binary, nil
	case "compact":
		return Compact, nil
	}
	return 0, fmt.Errorf("unknown thrift protocol %q (known: binary, compact)", s)
}

func (p Protocol) String() string {
	if p == Compact {
		return "compact"
	}
	return "binary"
}

// MessageType is the type of a Thrift message.
type MessageType uint8

// Message types (TMessageType).
const (
	Call      MessageType = 1
	Reply     MessageType = 2
	Exception MessageType = 3
	Oneway    MessageType = 4
)

func (t MessageType) String() string {
	switch t {
	case Call:
		return "call"
	case Reply:
		return "reply"
	case Exception:
		return "exception"
	case Oneway:
		return "oneway"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Header is a message header: what the router reads of a message.
type Header struct {
	Name  string
	Type  MessageType
	SeqID int32
}

// Message is one Thrift message: its header and its encoding (the header
// included, the frame length not).
type Message struct {
	Header
	Bytes []byte
	// TTwitter is the RequestHeader that came before a call on a
	// connection upgraded to TTwitter (nil otherwise), as the server
	// keeps it: without the trace and dtab with clearContext.
	TTwitter *RequestHeader

	// oneway is set on a call sent with the CALL type that the client
	// followed with another message without waiting: it was oneway.
	oneway atomic.Bool
}

func (m *Message) markOneway()    { m.oneway.Store(true) }
func (m *Message) isOneway() bool { return m.oneway.Load() }

// DefaultMaxMessageBytes bounds a message (a frame, or a buffered message
// as it is walked) when Codec.MaxBytes is 0: 16 MiB.
const DefaultMaxMessageBytes = 16 << 20

// maxDepth bounds the nesting of structs and containers a buffered
// message may have (the stack of the walk).
const maxDepth = 64

// Codec reads and writes the messages of one side of the router.
type Codec struct {
	Protocol Protocol
	// Framed messages carry a 4-byte big-endian length (thriftFramed).
	Framed bool
	// MaxBytes bounds a message; 0 means DefaultMaxMessageBytes.
	MaxBytes int
}

func (c Codec) max() int {
	if c.MaxBytes > 0 {
		return c.MaxBytes
	}
	return DefaultMaxMessageBytes
}

// TooLargeError says a message is over Codec.MaxBytes. Header is set when
// the message's header could be read (a reply is then possible).
type TooLargeError struct {
	Size   int64 // the frame length; -1 when unframed (size unknown)
	Max    int
	Header *Header
}

func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("thrift message exceeds the limit of %d bytes", e.Max)
	}
	return fmt.Sprintf("thrift frame of %d bytes exceeds the limit of %d bytes", e.Size, e.Max)
}

// ProtocolError says the bytes read are not a valid message of the codec.
// Header is set when the header was read before the error.
type ProtocolError struct {
	Reason string
	Header *Header
}

func (e *ProtocolError) Error() string { return "invalid thrift message: " + e.Reason }

// errLimit is what the scanner returns past the byte limit.
var errLimit = errors.New("limit")

// ReadMessage reads the next message from r. It returns io.EOF when r
// ends cleanly before a message, *TooLargeError or *ProtocolError for bad
// input, and io.ErrUnexpectedEOF when r ends within a message.
func (c Codec) ReadMessage(r *bufio.Reader) (*Message, error) {
	if c.Framed {
		return c.readFramed(r)
	}
	sc := scanner{br: r, keep: true, max: c.max()}
	h, err := sc.header(c.Protocol)
	if err != nil {
		return nil, sc.fail(err, nil, true)
	}
	if err := sc.skipStruct(c.Protocol, 0); err != nil {
		return nil, sc.fail(err, &h, false)
	}
	return &Message{Header: h, Bytes: sc.out}, nil
}

func (c Codec) readFramed(r *bufio.Reader) (*Message, error) {
	buf, err := c.readFrame(r)
	if err != nil {
		return nil, err
	}
	h, err := ParseHeader(c.Protocol, buf)
	if err != nil {
		return nil, err
	}
	return &Message{Header: h, Bytes: buf}, nil
}

// readFrame reads one frame's bytes.
func (c Codec) readFrame(r *bufio.Reader) ([]byte, error) {
	var lb [4]byte
	if n, err := io.ReadFull(r, lb[:]); err != nil {
		if err == io.EOF || (err == io.ErrUnexpectedEOF && n == 0) {
			return nil, io.EOF
		}
		return nil, err
	}
	size := int64(int32(binary.BigEndian.Uint32(lb[:])))
	if size <= 0 || size > int64(c.max()) {
		// Not a frame length this codec takes: say what the bytes look
		// like when they are the start of something else (a peer that
		// does not frame, HTTP, TLS) rather than only "too large".
		if hint := notAFrame(lb[:]); hint != "" {
			return nil, &ProtocolError{Reason: fmt.Sprintf("frame length %d: %s", size, hint)}
		}
	}
	if size <= 0 {
		return nil, &ProtocolError{Reason: fmt.Sprintf("frame length %d", size)}
	}
	if size > int64(c.max()) {
		// Read the header from the start of the frame, so that the caller
		// can be answered; the rest is not read (the connection closes).
		sc := scanner{br: r, max: int(min(size, 64<<10))}
		h, err := sc.header(c.Protocol)
		e := &TooLargeError{Size: size, Max: c.max()}
		if err == nil {
			e.Header = &h
		}
		return nil, e
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// ParseHeader reads the header at the start of an encoded message.
func ParseHeader(p Protocol, b []byte) (Header, error) {
	sc := scanner{sl: b, max: len(b)}
	h, err := sc.header(p)
	if err == io.EOF || err == errLimit {
		return Header{}, &ProtocolError{Reason: "the frame ends within the message header"}
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return Header{}, pe
	}
	return h, err
}

// scanner reads a message's encoding from br, or from sl when the
// message is in memory, at most max bytes in all, keeping what it read
// in out when keep is set. It reads without copying through a buffer of
// its own: from br's buffer (Peek, Discard) or from sl.
type scanner struct {
	br   *bufio.Reader
	sl   []byte // the rest of an in-memory message
	keep bool
	out  []byte
	n    int
	max  int
}

// fail turns a scanning error into ReadMessage's errors. atStart says no
// message had begun when nothing was read.
func (sc *scanner) fail(err error, h *Header, atStart bool) error {
	switch {
	case err == errLimit:
		return &TooLargeError{Size: -1, Max: sc.max, Header: h}
	case err == io.EOF && atStart && sc.n == 0:
		return io.EOF
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	}
	var pe *ProtocolError
	if errors.As(err, &pe) && pe.Header == nil {
		pe.Header = h
	}
	return err
}

func (sc *scanner) byte() (byte, error) {
	if sc.n >= sc.max {
		return 0, errLimit
	}
	var c byte
	if sc.br == nil {
		if len(sc.sl) == 0 {
			return 0, io.EOF
		}
		c, sc.sl = sc.sl[0], sc.sl[1:]
	} else {
		var err error
		if c, err = sc.br.ReadByte(); err != nil {
			return 0, err
		}
	}
	sc.n++
	if sc.keep {
		sc.out = append(sc.out, c)
	}
	return c, nil
}

// bytes reads n bytes; they are returned only when want is set (and are
// valid until the next read).
func (sc *scanner) bytes(n int, want bool) ([]byte, error) {
	if n < 0 {
		return nil, &ProtocolError{Reason: fmt.Sprintf("negative length %d", n)}
	}
	if n > sc.max-sc.n {
		return nil, errLimit
	}
	if sc.br == nil {
		if n > len(sc.sl) {
			sc.n += len(sc.sl)
			sc.sl = nil
			return nil, io.EOF
		}
		p := sc.sl[:n]
		sc.sl = sc.sl[n:]
		sc.n += n
		if sc.keep {
			sc.out = append(sc.out, p...)
		}
		return p, nil
	}
	var got []byte
	for n > 0 {
		p, err := sc.br.Peek(min(n, sc.br.Size()))
		k := len(p)
		if sc.keep {
			sc.out = append(sc.out, p...)
		}
		if want {
			got = append(got, p...)
		}
		_, _ = sc.br.Discard(k)
		sc.n += k
		n -= k
		if err != nil && n > 0 {
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return nil, err
		}
	}
	return got, nil
}

func (sc *scanner) i32() (int32, error) {
	var v uint32
	for range 4 {
		c, err := sc.byte()
		if err != nil {
			return 0, err
		}
		v = v<<8 | uint32(c)
	}
	return int32(v), nil
}

// varint reads an unsigned LEB128 varint of at most bits bits (at most
// ceil(bits/7) bytes).
func (sc *scanner) varint(bits uint) (uint64, error) {
	maxBytes := int((bits + 6) / 7)
	var x uint64
	for i := 0; ; i++ {
		c, err := sc.byte()
		if err != nil {
			return 0, err
		}
		if i == maxBytes {
			return 0, &ProtocolError{Reason: fmt.Sprintf("varint longer than %d bytes", maxBytes)}
		}
		x |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return x, nil
		}
	}
}

const (
	binaryVersionMask = 0xffff0000
	binaryVersion1    = 0x80010000
	compactProtocolID = 0x82
	compactVersion    = 1
)

// header reads a message header.
func (sc *scanner) header(p Protocol) (Header, error) {
	var h Header
	var name []byte
	if p == Compact {
		id, err := sc.byte()
		if err != nil {
			return h, err
		}
		if id != compactProtocolID {
			return h, &ProtocolError{Reason: fmt.Sprintf("compact protocol id 0x%02x, want 0x82%s", id, compactIDHint(id))}
		}
		vt, err := sc.byte()
		if err != nil {
			return h, err
		}
		if vt&0x1f != compactVersion {
			return h, &ProtocolError{Reason: fmt.Sprintf("compact protocol version %d, want 1", vt&0x1f)}
		}
		h.Type = MessageType(vt >> 5)
		seq, err := sc.varint(32)
		if err != nil {
			return h, err
		}
		h.SeqID = int32(uint32(seq))
		n, err := sc.varint(32)
		if err != nil {
			return h, err
		}
		if name, err = sc.bytes(int(int32(uint32(n))), true); err != nil {
			return h, err
		}
	} else {
		v, err := sc.i32()
		if err != nil {
			return h, err
		}
		if v < 0 {
			// Strict: version and type, then the name and the sequence id.
			if uint32(v)&binaryVersionMask != binaryVersion1 {
				return h, &ProtocolError{Reason: fmt.Sprintf("binary protocol version 0x%08x, want 0x8001 (is the peer using the compact protocol?)", uint32(v))}
			}
			h.Type = MessageType(v & 0xff)
			n, err := sc.i32()
			if err != nil {
				return h, err
			}
			if name, err = sc.bytes(int(n), true); err != nil {
				return h, err
			}
		} else {
			// Old (non-strict) encoding: the name first, then the type.
			var start [4]byte
			binary.BigEndian.PutUint32(start[:], uint32(v))
			if hint := foreignStart(start[:]); hint != "" {
				return h, &ProtocolError{Reason: "not a binary protocol message: " + hint}
			}
			if name, err = sc.bytes(int(v), true); err != nil {
				return h, err
			}
			if hint := messageStart(name); hint != "" {
				// v was a frame length: the message follows it.
				return h, &ProtocolError{Reason: fmt.Sprintf("a frame length (%d) followed by a %s message: the peer frames its messages (TFramedTransport), this side reads them unframed (thriftFramed: false)", v, hint)}
			}
			t, err := sc.byte()
			if err != nil {
				return h, err
			}
			h.Type = MessageType(t)
		}
		if h.SeqID, err = sc.i32(); err != nil {
			return h, err
		}
	}
	if h.Type < Call || h.Type > Oneway {
		return h, &ProtocolError{Reason: fmt.Sprintf("message type %d", h.Type)}
	}
	if !utf8.Valid(name) {
		return h, &ProtocolError{Reason: "message name is not UTF-8"}
	}
	h.Name = string(name)
	return h, nil
}

// messageStart names the protocol whose message header b starts with
// ("binary", "compact"), or "".
func messageStart(b []byte) string {
	switch {
	case len(b) >= 2 && b[0] == 0x80 && b[1] == 0x01:
		return "binary"
	case len(b) >= 2 && b[0] == compactProtocolID && b[1]&0x1f == compactVersion:
		return "compact"
	}
	return ""
}

// foreignStart says what the first bytes of a connection's input are when
// they start something other than Thrift that peers commonly send to a
// wrong port (an HTTP request, a TLS handshake), or "".
func foreignStart(b []byte) string {
	if len(b) >= 2 && b[0] == 0x16 && b[1] == 0x03 {
		return "the bytes start a TLS handshake: the peer uses TLS where this side does not (tls)"
	}
	if len(b) >= 4 && string(b[:4]) == "HTTP" {
		return "the bytes start an HTTP response: the peer speaks HTTP, not Thrift"
	}
	for _, m := range []string{"GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC", "CONN", "TRAC", "PRI "} {
		if len(b) >= 4 && string(b[:4]) == m {
			return fmt.Sprintf("the bytes start an HTTP request (%q): the peer speaks HTTP, not Thrift", b[:4])
		}
	}
	return ""
}

// notAFrame explains four bytes read as a frame length that are not one.
func notAFrame(b []byte) string {
	if p := messageStart(b); p != "" {
		return fmt.Sprintf("the bytes start an unframed %s message: the peer does not frame its messages (TBufferedTransport), this side expects frames (thriftFramed: true)", p)
	}
	return foreignStart(b)
}

// compactIDHint guesses, from a first byte that is not the compact
// protocol's id, what the peer sends.
func compactIDHint(id byte) string {
	switch {
	case id == 0x80:
		return " (is the peer using the binary protocol?)"
	case id == 0x00:
		return " (a frame length? the peer frames its messages (TFramedTransport), this side reads them unframed (thriftFramed: false))"
	case id == 0x16:
		return " (a TLS handshake? the peer uses TLS where this side does not)"
	case id >= 'A' && id <= 'Z':
		return " (HTTP? the peer speaks HTTP, not Thrift)"
	}
	return ""
}

// Binary protocol type ids (TType).
const (
	ttStop   = 0
	ttBool   = 2
	ttByte   = 3
	ttDouble = 4
	ttI16    = 6
	ttI32    = 8
	ttI64    = 10
	ttString = 11
	ttStruct = 12
	ttMap    = 13
	ttSet    = 14
	ttList   = 15
	ttUUID   = 16
)

// Compact protocol type ids.
const (
	ctStop     = 0
	ctTrue     = 1
	ctFalse    = 2
	ctByte     = 3
	ctI16      = 4
	ctI32      = 5
	ctI64      = 6
	ctDouble   = 7
	ctBinary   = 8
	ctList     = 9
	ctSet      = 10
	ctMap      = 11
	ctStruct   = 12
	ctUUID     = 13
	ctBoolElem = 1 // a bool inside a container: one byte
)

// skipStruct walks a struct (the message payload) to its STOP.
func (sc *scanner) skipStruct(p Protocol, depth int) error {
	if depth >= maxDepth {
		return &ProtocolError{Reason: fmt.Sprintf("nesting deeper than %d", maxDepth)}
	}
	for {
		t, err := sc.byte()
		if err != nil {
			return err
		}
		if p == Binary {
			if t == ttStop {
				return nil
			}
			switch t {
			case ttBool, ttByte, ttDouble, ttI16, ttI32, ttI64, ttString, ttStruct, ttMap, ttSet, ttList, ttUUID:
			default:
				return &ProtocolError{Reason: fmt.Sprintf("binary field type %d", t)}
			}
			if _, err := sc.bytes(2, false); err != nil { // field id
				return err
			}
			if err := sc.skipBinary(t, depth); err != nil {
				return err
			}
			continue
		}
		ft := t & 0x0f
		if ft == ctStop {
			if t != 0 {
				return &ProtocolError{Reason: fmt.Sprintf("compact field header 0x%02x", t)}
			}
			return nil
		}
		if t>>4 == 0 { // long form: a zigzag i16 field id follows
			if _, err := sc.varint(16); err != nil {
				return err
			}
		}
		if ft == ctTrue || ft == ctFalse {
			continue // the value is in the type
		}
		if err := sc.skipCompact(ft, depth); err != nil {
			return err
		}
	}
}

func (sc *scanner) skipBinary(t byte, depth int) error {
	switch t {
	case ttBool, ttByte:
		_, err := sc.bytes(1, false)
		return err
	case ttI16:
		_, err := sc.bytes(2, false)
		return err
	case ttI32:
		_, err := sc.bytes(4, false)
		return err
	case ttDouble, ttI64:
		_, err := sc.bytes(8, false)
		return err
	case ttUUID:
		_, err := sc.bytes(16, false)
		return err
	case ttString:
		n, err := sc.i32()
		if err != nil {
			return err
		}
		_, err = sc.bytes(int(n), false)
		return err
	case ttStruct:
		return sc.skipStruct(Binary, depth+1)
	case ttMap, ttSet, ttList:
		if depth+1 >= maxDepth {
			return &ProtocolError{Reason: fmt.Sprintf("nesting deeper than %d", maxDepth)}
		}
		var types []byte
		var err error
		if t == ttMap {
			types, err = sc.bytes(2, true)
		} else {
			types, err = sc.bytes(1, true)
		}
		if err != nil {
			return err
		}
		n, err := sc.i32()
		if err != nil {
			return err
		}
		if n < 0 {
			return &ProtocolError{Reason: fmt.Sprintf("negative container size %d", n)}
		}
		// Every element takes at least one byte, so the byte limit bounds
		// this loop.
		for i := int32(0); i < n; i++ {
			for _, et := range types {
				if err := sc.skipBinary(et, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return &ProtocolError{Reason: fmt.Sprintf("binary field type %d", t)}
}

func (sc *scanner) skipCompact(t byte, depth int) error {
	switch t {
	case ctBoolElem, ctFalse, ctByte:
		_, err := sc.bytes(1, false)
		return err
	case ctI16:
		_, err := sc.varint(16)
		return err
	case ctI32:
		_, err := sc.varint(32)
		return err
	case ctI64:
		_, err := sc.varint(64)
		return err
	case ctDouble:
		_, err := sc.bytes(8, false)
		return err
	case ctUUID:
		_, err := sc.bytes(16, false)
		return err
	case ctBinary:
		n, err := sc.varint(32)
		if err != nil {
			return err
		}
		_, err = sc.bytes(int(int32(uint32(n))), false)
		return err
	case ctStruct:
		return sc.skipStruct(Compact, depth+1)
	case ctList, ctSet, ctMap:
		if depth+1 >= maxDepth {
			return &ProtocolError{Reason: fmt.Sprintf("nesting deeper than %d", maxDepth)}
		}
		var n uint64
		var types []byte
		if t == ctMap {
			var err error
			if n, err = sc.varint(32); err != nil {
				return err
			}
			if n > 0 {
				kv, err := sc.byte()
				if err != nil {
					return err
				}
				types = []byte{kv >> 4, kv & 0x0f}
			}
		} else {
			sz, err := sc.byte()
			if err != nil {
				return err
			}
			n = uint64(sz >> 4)
			if n == 15 {
				if n, err = sc.varint(32); err != nil {
					return err
				}
			}
			types = []byte{sz & 0x0f}
		}
		if int32(uint32(n)) < 0 {
			return &ProtocolError{Reason: fmt.Sprintf("negative container size %d", int32(uint32(n)))}
		}
		for _, et := range types {
			if et == ctStop {
				return &ProtocolError{Reason: "container element type 0"}
			}
		}
		for i := uint64(0); i < n; i++ {
			for _, et := range types {
				if err := sc.skipCompact(et, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return &ProtocolError{Reason: fmt.Sprintf("compact field type %d", t)}
}
