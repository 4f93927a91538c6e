package thrift

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"unicode/utf8"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

// UpgradeMethod is the method of the TTwitter upgrade call (Finagle's
// "can trace" probe): a client that gets a reply, not an exception, then
// prefixes every call on the connection with a RequestHeader, and the
// server every reply with a ResponseHeader, in the connection's protocol
// and within the call's frame.
const UpgradeMethod = "__can__finagle__trace__v3__"

// RequestHeader is Finagle's TTwitter request header (tracing.thrift):
//
//	1: i64 trace_id, 2: i64 span_id, 3: optional i64 parent_span_id,
//	5: optional bool sampled, 6: optional ClientId{1: string name} client_id,
//	7: optional i64 flags, 8: list<RequestContext{1: binary key, 2: binary value}> contexts,
//	9: optional string dest, 10: optional list<Delegation{1: string src, 2: string dst}> delegations,
//	11: optional i64 trace_id_high
//
// Flags are Finagle's trace flags (1 debug, 2 sampling known, 4 sampled),
// those of l5d-ctx-trace.
type RequestHeader struct {
	TraceID, SpanID int64
	ParentSpanID    int64
	HasParent       bool
	Sampled         *bool
	ClientID        string
	HasClientID     bool
	Flags           int64
	Contexts        []RequestContext
	Dest            string
	HasDest         bool
	Delegations     []Delegation
	TraceIDHigh     int64
}

// RequestContext is one broadcast context entry of a RequestHeader.
type RequestContext struct{ Key, Value []byte }

// Delegation is one dentry of a RequestHeader's dtab: src => dst.
type Delegation struct{ Src, Dst string }

// maxHeaderEntries bounds the contexts and delegations of a header (a
// list's size is read before its elements).
const maxHeaderEntries = 1 << 14

// ParseRequestHeader decodes a RequestHeader encoded in protocol p, which
// must be the whole of b.
func ParseRequestHeader(p Protocol, b []byte) (*RequestHeader, error) {
	d := decoder{sc: scanner{sl: b, max: len(b)}, p: p}
	h := new(RequestHeader)
	err := d.structFields(0, func(id int16, t byte, bv bool) (bool, error) {
		var err error
		switch {
		case id == 1 && t == ttI64:
			h.TraceID, err = d.i64()
		case id == 2 && t == ttI64:
			h.SpanID, err = d.i64()
		case id == 3 && t == ttI64:
			h.ParentSpanID, err = d.i64()
			h.HasParent = true
		case id == 5 && t == ttBool:
			var v bool
			v, err = d.bool(bv)
			h.Sampled = &v
		case id == 6 && t == ttStruct:
			h.HasClientID = true
			err = d.structFields(1, func(id int16, t byte, _ bool) (bool, error) {
				if id != 1 || t != ttString {
					return false, nil
				}
				var err error
				h.ClientID, err = d.str()
				return true, err
			})
		case id == 7 && t == ttI64:
			h.Flags, err = d.i64()
		case id == 8 && t == ttList:
			h.Contexts = nil // a repeated field: the last one counts
			err = d.list(ttStruct, func() error {
				var c RequestContext
				err := d.structFields(2, func(id int16, t byte, _ bool) (bool, error) {
					var err error
					switch {
					case id == 1 && t == ttString:
						c.Key, err = d.binary()
					case id == 2 && t == ttString:
						c.Value, err = d.binary()
					default:
						return false, nil
					}
					return true, err
				})
				h.Contexts = append(h.Contexts, c)
				return err
			})
		case id == 9 && t == ttString:
			h.Dest, err = d.str()
			h.HasDest = true
		case id == 10 && t == ttList:
			h.Delegations = []Delegation{}
			err = d.list(ttStruct, func() error {
				var dl Delegation
				err := d.structFields(2, func(id int16, t byte, _ bool) (bool, error) {
					var err error
					switch {
					case id == 1 && t == ttString:
						dl.Src, err = d.str()
					case id == 2 && t == ttString:
						dl.Dst, err = d.str()
					default:
						return false, nil
					}
					return true, err
				})
				h.Delegations = append(h.Delegations, dl)
				return err
			})
		case id == 11 && t == ttI64:
			h.TraceIDHigh, err = d.i64()
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, headerError(err)
	}
	if len(d.sc.sl) > 0 {
		return nil, &ProtocolError{Reason: fmt.Sprintf("TTwitter request header: %d bytes after its end", len(d.sc.sl))}
	}
	return h, nil
}

func headerError(err error) error {
	if err == io.EOF || err == errLimit {
		return &ProtocolError{Reason: "TTwitter request header: truncated"}
	}
	if pe, ok := err.(*ProtocolError); ok {
		return &ProtocolError{Reason: "TTwitter request header: " + pe.Reason}
	}
	return err
}

// AppendRequestHeader appends h encoded in protocol p.
func AppendRequestHeader(dst []byte, p Protocol, h *RequestHeader) []byte {
	e := encoder{b: dst, p: p}
	e.begin()
	e.field(ttI64, 1)
	e.i64(h.TraceID)
	e.field(ttI64, 2)
	e.i64(h.SpanID)
	if h.HasParent {
		e.field(ttI64, 3)
		e.i64(h.ParentSpanID)
	}
	if h.Sampled != nil {
		e.boolField(5, *h.Sampled)
	}
	if h.HasClientID {
		e.field(ttStruct, 6)
		e.begin()
		e.field(ttString, 1)
		e.str(h.ClientID)
		e.end()
	}
	if h.Flags != 0 {
		e.field(ttI64, 7)
		e.i64(h.Flags)
	}
	e.field(ttList, 8) // required: written even when empty
	e.listBegin(ttStruct, len(h.Contexts))
	for _, c := range h.Contexts {
		e.begin()
		e.field(ttString, 1)
		e.str(string(c.Key))
		e.field(ttString, 2)
		e.str(string(c.Value))
		e.end()
	}
	if h.HasDest {
		e.field(ttString, 9)
		e.str(h.Dest)
	}
	if h.Delegations != nil {
		e.field(ttList, 10)
		e.listBegin(ttStruct, len(h.Delegations))
		for _, d := range h.Delegations {
			e.begin()
			e.field(ttString, 1)
			e.str(d.Src)
			e.field(ttString, 2)
			e.str(d.Dst)
			e.end()
		}
	}
	if h.TraceIDHigh != 0 {
		e.field(ttI64, 11)
		e.i64(h.TraceIDHigh)
	}
	e.end()
	return e.b
}

// emptyStruct is an empty struct in either protocol: its STOP byte. It
// is the body of the upgrade call (ConnectionOptions) and of its reply
// (UpgradeReply), and the ResponseHeader a router writes (no spans, no
// contexts).
var emptyStruct = []byte{ttStop}

// AppendUpgradeCall appends the TTwitter upgrade call in protocol p.
func AppendUpgradeCall(dst []byte, p Protocol, seq int32) []byte {
	dst = appendMessageBegin(dst, p, Header{Name: UpgradeMethod, Type: Call, SeqID: seq})
	return append(dst, emptyStruct...)
}

// appendUpgradeReply appends the reply accepting an upgrade call h.
func appendUpgradeReply(dst []byte, p Protocol, h Header) []byte {
	dst = appendMessageBegin(dst, p, Header{Name: h.Name, Type: Reply, SeqID: h.SeqID})
	return append(dst, emptyStruct...)
}

// appendMessageBegin appends a message header in protocol p (strict
// binary).
func appendMessageBegin(dst []byte, p Protocol, h Header) []byte {
	if p == Compact {
		dst = append(dst, compactProtocolID, compactVersion|byte(h.Type)<<5)
		dst = binary.AppendUvarint(dst, uint64(uint32(h.SeqID)))
		dst = binary.AppendUvarint(dst, uint64(len(h.Name)))
		return append(dst, h.Name...)
	}
	dst = binary.BigEndian.AppendUint32(dst, binaryVersion1|uint32(h.Type))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(h.Name)))
	dst = append(dst, h.Name...)
	return binary.BigEndian.AppendUint32(dst, uint32(h.SeqID))
}

// ReadHeaded reads a message preceded by a TTwitter header struct (a
// RequestHeader before a call, a ResponseHeader before a reply), both in
// one frame when framed. It returns the header's encoding and the
// message.
func (c Codec) ReadHeaded(r *bufio.Reader) ([]byte, *Message, error) {
	if !c.Framed {
		sc := scanner{br: r, keep: true, max: c.max()}
		if err := sc.skipStruct(c.Protocol, 0); err != nil {
			return nil, nil, sc.fail(err, nil, true)
		}
		n := len(sc.out)
		h, err := sc.header(c.Protocol)
		if err != nil {
			return nil, nil, sc.fail(err, nil, false)
		}
		if err := sc.skipStruct(c.Protocol, 0); err != nil {
			return nil, nil, sc.fail(err, &h, false)
		}
		return sc.out[:n:n], &Message{Header: h, Bytes: sc.out[n:]}, nil
	}
	b, err := c.readFrame(r)
	if err != nil {
		return nil, nil, err
	}
	sc := scanner{sl: b, max: len(b)}
	if err := sc.skipStruct(c.Protocol, 0); err != nil {
		return nil, nil, headerError(err)
	}
	n := len(b) - len(sc.sl)
	h, err := ParseHeader(c.Protocol, b[n:])
	if err != nil {
		return nil, nil, err
	}
	return b[:n:n], &Message{Header: h, Bytes: b[n:]}, nil
}

// writeHeaded writes head then msg as one message (one frame when
// framed).
func (c Codec) writeHeaded(w io.Writer, head, msg []byte) error {
	if !c.Framed {
		bufs := net.Buffers{head, msg}
		_, err := bufs.WriteTo(w)
		return err
	}
	var lb [4]byte
	binary.BigEndian.PutUint32(lb[:], uint32(len(head)+len(msg)))
	bufs := net.Buffers{lb[:], head, msg}
	_, err := bufs.WriteTo(w)
	return err
}

// ---- a small decoder and encoder of structs, for the TTwitter headers.

type decoder struct {
	sc scanner
	p  Protocol
}

// structFields reads a struct's fields, calling f with each field's id
// and type (as a binary-protocol type id; bv is a compact bool field's
// value); f returns false for a field it does not read, which is skipped.
func (d *decoder) structFields(depth int, f func(id int16, t byte, bv bool) (bool, error)) error {
	if depth >= maxDepth {
		return &ProtocolError{Reason: "nesting too deep"}
	}
	var last int16
	for {
		t, err := d.sc.byte()
		if err != nil {
			return err
		}
		if t == ttStop {
			return nil
		}
		var id int16
		var bv bool
		bt := t
		if d.p == Binary {
			b, err := d.sc.bytes(2, true)
			if err != nil {
				return err
			}
			id = int16(binary.BigEndian.Uint16(b))
		} else {
			ct := t & 0x0f
			if delta := t >> 4; delta != 0 {
				id = last + int16(delta)
			} else {
				v, err := d.sc.varint(16)
				if err != nil {
					return err
				}
				id = int16(uint16(v>>1) ^ -uint16(v&1))
			}
			last = id
			bt = compactToBinary(ct)
			bv = ct == ctTrue
			t = ct
		}
		ok, err := f(id, bt, bv)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if d.p == Binary {
			err = d.sc.skipBinary(t, depth)
		} else if t != ctTrue && t != ctFalse {
			err = d.sc.skipCompact(t, depth)
		}
		if err != nil {
			return err
		}
	}
}

// compactToBinary maps a compact type id to the binary one (0 for none).
func compactToBinary(ct byte) byte {
	switch ct {
	case ctTrue, ctFalse:
		return ttBool
	case ctByte:
		return ttByte
	case ctI16:
		return ttI16
	case ctI32:
		return ttI32
	case ctI64:
		return ttI64
	case ctDouble:
		return ttDouble
	case ctBinary:
		return ttString
	case ctList:
		return ttList
	case ctSet:
		return ttSet
	case ctMap:
		return ttMap
	case ctStruct:
		return ttStruct
	case ctUUID:
		return ttUUID
	}
	return 0
}

func binaryToCompact(t byte) byte {
	switch t {
	case ttBool:
		return ctTrue
	case ttByte:
		return ctByte
	case ttI16:
		return ctI16
	case ttI32:
		return ctI32
	case ttI64:
		return ctI64
	case ttDouble:
		return ctDouble
	case ttString:
		return ctBinary
	case ttList:
		return ctList
	case ttSet:
		return ctSet
	case ttMap:
		return ctMap
	case ttStruct:
		return ctStruct
	}
	return ctUUID
}

func (d *decoder) i64() (int64, error) {
	if d.p == Compact {
		v, err := d.sc.varint(64)
		return int64(v>>1) ^ -int64(v&1), err
	}
	b, err := d.sc.bytes(8, true)
	if err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

func (d *decoder) bool(compactValue bool) (bool, error) {
	if d.p == Compact {
		return compactValue, nil
	}
	c, err := d.sc.byte()
	return c != 0, err
}

func (d *decoder) binary() ([]byte, error) {
	var n int
	if d.p == Compact {
		v, err := d.sc.varint(32)
		if err != nil {
			return nil, err
		}
		n = int(int32(uint32(v)))
	} else {
		v, err := d.sc.i32()
		if err != nil {
			return nil, err
		}
		n = int(v)
	}
	b, err := d.sc.bytes(n, true)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

func (d *decoder) str() (string, error) {
	b, err := d.binary()
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", &ProtocolError{Reason: "a string is not UTF-8"}
	}
	return string(b), nil
}

// list reads a list whose elements must be of type elem (binary id),
// calling f for each.
func (d *decoder) list(elem byte, f func() error) error {
	var et byte
	var n int64
	if d.p == Compact {
		b, err := d.sc.byte()
		if err != nil {
			return err
		}
		et, n = compactToBinary(b&0x0f), int64(b>>4)
		if n == 15 {
			v, err := d.sc.varint(32)
			if err != nil {
				return err
			}
			n = int64(int32(uint32(v)))
		}
	} else {
		b, err := d.sc.bytes(5, true)
		if err != nil {
			return err
		}
		et, n = b[0], int64(int32(binary.BigEndian.Uint32(b[1:])))
	}
	switch {
	case n < 0 || n > maxHeaderEntries:
		return &ProtocolError{Reason: fmt.Sprintf("list of %d elements", n)}
	case n > 0 && et != elem:
		return &ProtocolError{Reason: fmt.Sprintf("list of type %d, want %d", et, elem)}
	}
	for range n {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

type encoder struct {
	b    []byte
	p    Protocol
	last []int16 // compact: the last field id of each open struct
}

func (e *encoder) begin() { e.last = append(e.last, 0) }

func (e *encoder) end() {
	e.b = append(e.b, ttStop)
	e.last = e.last[:len(e.last)-1]
}

func (e *encoder) field(t byte, id int16) {
	if e.p == Binary {
		e.b = append(e.b, t, byte(uint16(id)>>8), byte(id))
		return
	}
	e.compactField(binaryToCompact(t), id)
}

func (e *encoder) compactField(ct byte, id int16) {
	last := &e.last[len(e.last)-1]
	if delta := id - *last; delta > 0 && delta <= 15 {
		e.b = append(e.b, byte(delta)<<4|ct)
	} else {
		e.b = append(e.b, ct)
		e.b = binary.AppendUvarint(e.b, uint64(uint16(id<<1^id>>15)))
	}
	*last = id
}

func (e *encoder) boolField(id int16, v bool) {
	if e.p == Binary {
		e.field(ttBool, id)
		if v {
			e.b = append(e.b, 1)
		} else {
			e.b = append(e.b, 0)
		}
		return
	}
	ct := byte(ctFalse)
	if v {
		ct = ctTrue
	}
	e.compactField(ct, id)
}

func (e *encoder) i64(v int64) {
	if e.p == Compact {
		e.b = binary.AppendUvarint(e.b, uint64(v<<1^v>>63))
		return
	}
	e.b = binary.BigEndian.AppendUint64(e.b, uint64(v))
}

func (e *encoder) str(s string) {
	if e.p == Compact {
		e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	} else {
		e.b = binary.BigEndian.AppendUint32(e.b, uint32(len(s)))
	}
	e.b = append(e.b, s...)
}

func (e *encoder) listBegin(t byte, n int) {
	if e.p == Binary {
		e.b = append(e.b, t)
		e.b = binary.BigEndian.AppendUint32(e.b, uint32(n))
		return
	}
	ct := binaryToCompact(t)
	if n < 15 {
		e.b = append(e.b, byte(n)<<4|ct)
		return
	}
	e.b = append(e.b, 0xf0|ct)
	e.b = binary.AppendUvarint(e.b, uint64(n))
}

// ---- trace and dtab between headers and the router's request.

// hdrCtxTrace is the trace header of the router's tracer (thrift routers
// use Linkerd's propagator).
const hdrCtxTrace = "L5d-Ctx-Trace"

// Finagle's trace flags, those of l5d-ctx-trace.
const (
	flagSamplingKnown = 2
	flagSampled       = 4
)

// traceHeaders writes the trace of an inbound RequestHeader on the
// router's request as l5d-ctx-trace, which the router's tracer reads.
func traceHeaders(dst http.Header, h *RequestHeader) {
	if h.TraceID == 0 && h.SpanID == 0 {
		return
	}
	flags := uint64(h.Flags)
	if h.Sampled != nil {
		flags |= flagSamplingKnown
		if *h.Sampled {
			flags |= flagSampled
		} else {
			flags &^= flagSampled
		}
	}
	parent := uint64(h.SpanID)
	if h.HasParent {
		parent = uint64(h.ParentSpanID)
	}
	t := proxy.Trace{SpanID: uint64(h.SpanID), ParentID: parent, TraceID: uint64(h.TraceID), TraceIDHigh: uint64(h.TraceIDHigh), Flags: flags}
	dst[hdrCtxTrace] = []string{t.Encode()}
}

// outboundHeader is the RequestHeader of a call sent on an upgraded
// connection: the trace the router's tracer wrote on the outbound
// request (l5d-ctx-trace), and the rest of the inbound call's header, if
// it had one.
func outboundHeader(h http.Header, in *RequestHeader) *RequestHeader {
	out := new(RequestHeader)
	if in != nil {
		out.ClientID, out.HasClientID = in.ClientID, in.HasClientID
		out.Contexts = in.Contexts
		out.Dest, out.HasDest = in.Dest, in.HasDest
		out.Delegations = in.Delegations
	}
	if t, ok := proxy.ParseTrace(h.Get(hdrCtxTrace)); ok {
		out.TraceID, out.SpanID, out.TraceIDHigh = int64(t.TraceID), int64(t.SpanID), int64(t.TraceIDHigh)
		out.ParentSpanID, out.HasParent = int64(t.ParentID), true
		out.Flags = int64(t.Flags)
		if t.Flags&flagSamplingKnown != 0 {
			s := t.Flags&flagSampled != 0
			out.Sampled = &s
		}
	}
	return out
}

// delegationsDtab turns a header's delegations into the call's local dtab.
func delegationsDtab(ds []Delegation) (dtab.Dtab, error) {
	var out dtab.Dtab
	for _, d := range ds {
		e, err := dtab.ParseDentry(d.Src + "=>" + d.Dst)
		if err != nil {
			return nil, &proxy.DtabError{Header: "TTwitter delegation", Value: d.Src + "=>" + d.Dst, Err: err}
		}
		out = append(out, e)
	}
	return out, nil
}
