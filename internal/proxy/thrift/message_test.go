package thrift

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	athrift "github.com/apache/thrift/lib/go/thrift"
)

// encode returns a message as the apache/thrift library writes it: the
// header, a struct with one field of every kind, the end.
func encode(t testing.TB, p Protocol, name string, typ athrift.TMessageType, seq int32) []byte {
	t.Helper()
	ctx := context.Background()
	buf := athrift.NewTMemoryBuffer()
	var prot athrift.TProtocol
	if p == Compact {
		prot = athrift.NewTCompactProtocolConf(buf, &athrift.TConfiguration{})
	} else {
		prot = athrift.NewTBinaryProtocolConf(buf, &athrift.TConfiguration{})
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(prot.WriteMessageBegin(ctx, name, typ, seq))
	must(prot.WriteStructBegin(ctx, "args"))
	field := func(typ athrift.TType, id int16, write func()) {
		must(prot.WriteFieldBegin(ctx, "f", typ, id))
		write()
		must(prot.WriteFieldEnd(ctx))
	}
	field(athrift.BOOL, 1, func() { must(prot.WriteBool(ctx, true)) })
	field(athrift.BOOL, 2, func() { must(prot.WriteBool(ctx, false)) })
	field(athrift.BYTE, 3, func() { must(prot.WriteByte(ctx, -3)) })
	field(athrift.I16, 4, func() { must(prot.WriteI16(ctx, -300)) })
	field(athrift.I32, 5, func() { must(prot.WriteI32(ctx, 1<<30)) })
	field(athrift.I64, 6, func() { must(prot.WriteI64(ctx, -1<<50)) })
	field(athrift.DOUBLE, 7, func() { must(prot.WriteDouble(ctx, 3.5)) })
	field(athrift.STRING, 8, func() { must(prot.WriteString(ctx, strings.Repeat("s", 600))) })
	field(athrift.LIST, 9, func() {
		must(prot.WriteListBegin(ctx, athrift.BOOL, 20))
		for i := range 20 {
			must(prot.WriteBool(ctx, i%3 == 0))
		}
		must(prot.WriteListEnd(ctx))
	})
	field(athrift.SET, 10, func() {
		must(prot.WriteSetBegin(ctx, athrift.I32, 2))
		must(prot.WriteI32(ctx, 1))
		must(prot.WriteI32(ctx, 2))
		must(prot.WriteSetEnd(ctx))
	})
	field(athrift.MAP, 11, func() {
		must(prot.WriteMapBegin(ctx, athrift.STRING, athrift.LIST, 1))
		must(prot.WriteString(ctx, "k"))
		must(prot.WriteListBegin(ctx, athrift.DOUBLE, 1))
		must(prot.WriteDouble(ctx, 1))
		must(prot.WriteListEnd(ctx))
		must(prot.WriteMapEnd(ctx))
	})
	field(athrift.MAP, 12, func() { // empty map
		must(prot.WriteMapBegin(ctx, athrift.I32, athrift.I32, 0))
		must(prot.WriteMapEnd(ctx))
	})
	field(athrift.STRUCT, 300, func() { // long-form field id in compact
		must(prot.WriteStructBegin(ctx, "inner"))
		field(athrift.UUID, 1, func() { must(prot.WriteUUID(ctx, athrift.Tuuid{1, 2, 3})) })
		must(prot.WriteFieldStop(ctx))
		must(prot.WriteStructEnd(ctx))
	})
	must(prot.WriteFieldStop(ctx))
	must(prot.WriteStructEnd(ctx))
	must(prot.WriteMessageEnd(ctx))
	must(prot.Flush(ctx))
	return append([]byte(nil), buf.Bytes()...)
}

func framed(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(m)))
		out = append(out, m...)
	}
	return out
}

func reader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// Messages written by the library are read back, framed and buffered, in
// both protocols: the header, and exactly the message's bytes (buffered
// messages back to back are told apart by walking their encoding).
func TestReadMessageLibraryEncodings(t *testing.T) {
	for _, p := range []Protocol{Binary, Compact} {
		for _, isFramed := range []bool{true, false} {
			t.Run(p.String()+map[bool]string{true: "/framed", false: "/buffered"}[isFramed], func(t *testing.T) {
				m1 := encode(t, p, "getUser", athrift.CALL, 7)
				m2 := encode(t, p, "notify", athrift.ONEWAY, -2)
				in := append(append([]byte(nil), m1...), m2...)
				if isFramed {
					in = framed(m1, m2)
				}
				r := reader(in)
				c := Codec{Protocol: p, Framed: isFramed}
				for _, want := range []struct {
					h Header
					b []byte
				}{{Header{"getUser", Call, 7}, m1}, {Header{"notify", Oneway, -2}, m2}} {
					m, err := c.ReadMessage(r)
					if err != nil {
						t.Fatal(err)
					}
					if m.Header != want.h || !bytes.Equal(m.Bytes, want.b) {
						t.Errorf("read %+v (%d bytes); want %+v (%d bytes)", m.Header, len(m.Bytes), want.h, len(want.b))
					}
				}
				if _, err := c.ReadMessage(r); err != io.EOF {
					t.Errorf("after the last message: %v; want io.EOF", err)
				}
			})
		}
	}
}

// The binary protocol's old (non-strict) header is read too.
func TestReadMessageNonStrictBinary(t *testing.T) {
	ctx := context.Background()
	buf := athrift.NewTMemoryBuffer()
	prot := athrift.NewTBinaryProtocolConf(buf, &athrift.TConfiguration{TBinaryStrictWrite: athrift.BoolPtr(false)})
	_ = prot.WriteMessageBegin(ctx, "old", athrift.CALL, 9)
	_ = prot.WriteStructBegin(ctx, "a")
	_ = prot.WriteFieldStop(ctx)
	_ = prot.WriteStructEnd(ctx)
	_ = prot.WriteMessageEnd(ctx)
	m, err := Codec{Protocol: Binary}.ReadMessage(reader(buf.Bytes()))
	if err != nil || m.Header != (Header{"old", Call, 9}) {
		t.Fatalf("got %+v, %v", m, err)
	}
}

func TestReadMessageErrors(t *testing.T) {
	call := encode(t, Binary, "m", athrift.CALL, 1)
	ccall := encode(t, Compact, "m", athrift.CALL, 1)
	big := framed(call)
	binary.BigEndian.PutUint32(big, 1<<30)
	tests := []struct {
		name string
		c    Codec
		in   []byte
		want func(error) bool
	}{
		{"truncated buffered", Codec{}, call[:len(call)-1], func(err error) bool { return err == io.ErrUnexpectedEOF }},
		{"truncated frame", Codec{Framed: true}, framed(call)[:20], func(err error) bool { return err == io.ErrUnexpectedEOF }},
		{"truncated frame length", Codec{Framed: true}, []byte{0, 0}, func(err error) bool { return err == io.ErrUnexpectedEOF }},
		{"frame too large", Codec{Framed: true}, big, func(err error) bool {
			var tl *TooLargeError
			return errors.As(err, &tl) && tl.Size == 1<<30 && tl.Header != nil && tl.Header.Name == "m" &&
				tl.Error() == "thrift frame of 1073741824 bytes exceeds the limit of 16777216 bytes"
		}},
		{"buffered too large", Codec{MaxBytes: 100}, call, func(err error) bool {
			var tl *TooLargeError
			return errors.As(err, &tl) && tl.Size == -1 && tl.Header != nil && tl.Header.Name == "m"
		}},
		{"zero frame", Codec{Framed: true}, []byte{0, 0, 0, 0}, isProtocolError("frame length 0")},
		{"compact read as binary", Codec{}, ccall, isProtocolError("is the peer using the compact protocol?")},
		{"binary read as compact", Codec{Protocol: Compact}, call, isProtocolError("is the peer using the binary protocol?")},
		{"bad type", Codec{}, []byte{0x80, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0}, isProtocolError("message type 9")},
		{"bad field type", Codec{}, append(call[:13:13], 99), isProtocolError("binary field type 99")},
		{"negative string", Codec{}, append(call[:13:13], 11, 0, 1, 0xff, 0xff, 0xff, 0xff), isProtocolError("negative length -1")},
		{"frame ends in header", Codec{Framed: true}, framed(call[:6]), isProtocolError("the frame ends within the message header")},
		{"long varint", Codec{Protocol: Compact}, []byte{0x82, 0x21, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, isProtocolError("varint longer than 5 bytes")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.ReadMessage(reader(tt.in))
			if !tt.want(err) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// The usual misconfigurations — framing or protocol not matching the
// peer's, an HTTP or TLS client on a thrift port, a thrift client on an
// HTTP endpoint — are named, instead of "frame of N bytes exceeds the
// limit" or a protocol id alone. Messages come from the library.
func TestReadMessageNamesMismatches(t *testing.T) {
	call := encode(t, Binary, "echo", athrift.CALL, 1)
	ccall := encode(t, Compact, "echo", athrift.CALL, 1)
	httpReq := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	httpRsp := []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
	tlsHello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	const unframed = "the peer does not frame its messages (TBufferedTransport), this side expects frames (thriftFramed: true)"
	const framedPeer = "the peer frames its messages (TFramedTransport), this side reads them unframed (thriftFramed: false)"
	tests := []struct {
		name string
		c    Codec
		in   []byte
		want string
	}{
		{"buffered binary to framed", Codec{Framed: true}, call, "frame length -2147418111: the bytes start an unframed binary message: " + unframed},
		{"buffered compact to framed", Codec{Framed: true, Protocol: Compact}, ccall, "the bytes start an unframed compact message: " + unframed},
		{"framed binary to buffered", Codec{}, framed(call), fmt.Sprintf("a frame length (%d) followed by a binary message: %s", len(call), framedPeer)},
		{"framed compact to buffered", Codec{Protocol: Compact}, framed(ccall), "compact protocol id 0x00, want 0x82 (a frame length? " + framedPeer + ")"},
		{"framed compact to buffered binary", Codec{}, framed(ccall), "followed by a compact message: " + framedPeer},
		{"HTTP to framed", Codec{Framed: true}, httpReq, `frame length 1195725856: the bytes start an HTTP request ("GET "): the peer speaks HTTP, not Thrift`},
		{"HTTP to buffered", Codec{}, httpReq, `not a binary protocol message: the bytes start an HTTP request ("GET ")`},
		{"HTTP to compact", Codec{Protocol: Compact}, httpReq, "compact protocol id 0x47, want 0x82 (HTTP? the peer speaks HTTP, not Thrift)"},
		{"HTTP reply to framed", Codec{Framed: true}, httpRsp, "the bytes start an HTTP response: the peer speaks HTTP, not Thrift"},
		{"TLS to framed", Codec{Framed: true}, tlsHello, "the bytes start a TLS handshake: the peer uses TLS where this side does not (tls)"},
		{"TLS to buffered", Codec{}, tlsHello, "not a binary protocol message: the bytes start a TLS handshake"},
		{"TLS to compact", Codec{Protocol: Compact}, tlsHello, "(a TLS handshake? the peer uses TLS where this side does not)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.ReadMessage(reader(tt.in))
			if !isProtocolError(tt.want)(err) {
				t.Errorf("err = %v\nwant a protocol error with %q", err, tt.want)
			}
		})
	}
	// A valid frame is still read whatever its length's bytes look like.
	big := make([]byte, 0x0001_0000)
	copy(big, call)
	if m, err := (Codec{Framed: true}).ReadMessage(reader(framed(big))); err != nil || m.Header.Name != "echo" {
		t.Fatalf("frame of %d bytes: %v", len(big), err)
	}
}

func isProtocolError(reason string) func(error) bool {
	return func(err error) bool {
		var pe *ProtocolError
		return errors.As(err, &pe) && strings.Contains(pe.Reason, reason)
	}
}

// Deep nesting is refused, not walked (the walk's stack is bounded).
func TestReadMessageDepth(t *testing.T) {
	head := encode(t, Binary, "d", athrift.CALL, 1)[:13]
	deep := append([]byte(nil), head...)
	for range 100 {
		deep = append(deep, 12, 0, 1) // a struct field holding a struct...
	}
	_, err := Codec{}.ReadMessage(reader(deep))
	if !isProtocolError("nesting deeper than 64")(err) {
		t.Errorf("err = %v", err)
	}
}

// The exceptions the router answers are read by the library as the
// TApplicationException they are, in both protocols.
func TestAppendExceptionReadByLibrary(t *testing.T) {
	ctx := context.Background()
	for _, p := range []Protocol{Binary, Compact} {
		b := AppendException(nil, p, Header{Name: "getUser", SeqID: -5}, "Unable to route request!\nservice name: /svc/x", ExcInternalError)
		buf := athrift.NewTMemoryBuffer()
		buf.Write(b)
		var prot athrift.TProtocol = athrift.NewTBinaryProtocolConf(buf, &athrift.TConfiguration{})
		if p == Compact {
			prot = athrift.NewTCompactProtocolConf(buf, &athrift.TConfiguration{})
		}
		name, typ, seq, err := prot.ReadMessageBegin(ctx)
		if err != nil || name != "getUser" || typ != athrift.EXCEPTION || seq != -5 {
			t.Fatalf("%s: header %q %d %d %v", p, name, typ, seq, err)
		}
		exc := athrift.NewTApplicationException(0, "")
		if err := exc.Read(ctx, prot); err != nil {
			t.Fatal(err)
		}
		if exc.TypeId() != athrift.INTERNAL_ERROR || exc.Error() != "Unable to route request!\nservice name: /svc/x" {
			t.Errorf("%s: exception %d %q", p, exc.TypeId(), exc.Error())
		}
		if buf.Len() != 0 {
			t.Errorf("%s: %d bytes left after the exception", p, buf.Len())
		}
		// And the router's own reader agrees with the library's writer.
		if h, err := ParseHeader(p, b); err != nil || h != (Header{"getUser", Exception, -5}) {
			t.Errorf("%s: ParseHeader = %+v, %v", p, h, err)
		}
	}
}

func TestIdentify(t *testing.T) {
	svc := []string{"svc"}
	tests := []struct {
		inDst bool
		name  string
		want  string
	}{
		{false, "anything/at all", "/svc"},
		{true, "getUser", "/svc/getUser"},
		{true, "", "error"},
		{true, "a/b", "error"},
		{true, "a\nb", "error"},
	}
	for _, tt := range tests {
		p, err := Identify(svc, tt.inDst, Header{Name: tt.name})
		got := "error"
		if err == nil {
			got = p.String()
		}
		if got != tt.want {
			t.Errorf("Identify(%v, %q) = %s (%v); want %s", tt.inDst, tt.name, got, err, tt.want)
		}
	}
	if p, _ := Identify(svc, true, Header{Name: "m"}); len(svc) != 1 || p.String() != "/svc/m" {
		t.Error("Identify modified the prefix")
	}
}
