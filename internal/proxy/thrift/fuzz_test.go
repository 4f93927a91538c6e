package thrift

import (
	"bytes"
	"errors"
	"io"
	"testing"

	athrift "github.com/apache/thrift/lib/go/thrift"
)

// FuzzReadMessage feeds arbitrary bytes to the frame and header reader in
// each of its four modes (bit 0: compact, bit 1: framed). It must never
// panic nor read past its limit; what it accepts must read back the same
// from its own bytes, and an exception answering it must parse back.
func FuzzReadMessage(f *testing.F) {
	for mode := range uint8(4) {
		p, isFramed := Protocol(mode&1), mode&2 != 0
		for _, typ := range []athrift.TMessageType{athrift.CALL, athrift.ONEWAY, athrift.REPLY} {
			m := encode(f, p, "method", typ, 42)
			if isFramed {
				m = framed(m)
			}
			f.Add(mode, m)
			f.Add(mode, m[:len(m)/2])
		}
	}
	f.Add(uint8(0), []byte{0x80, 1, 0, 1, 0, 0, 0, 1, 'x', 0, 0, 0, 1, 15, 0, 1, 12, 0x7f, 0xff, 0xff, 0xff})
	f.Add(uint8(1), []byte{0x82, 0x21, 1, 1, 'x', 0x19, 0xfc, 0xff, 0xff, 0xff, 0x0f})
	f.Add(uint8(2), []byte{0x7f, 0xff, 0xff, 0xff, 0x80, 1, 0, 1})
	const max = 4096
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		c := Codec{Protocol: Protocol(mode & 1), Framed: mode&2 != 0, MaxBytes: max}
		m, err := c.ReadMessage(reader(data))
		if err != nil {
			var tl *TooLargeError
			var pe *ProtocolError
			if !errors.As(err, &tl) && !errors.As(err, &pe) && err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if len(m.Bytes) > max {
			t.Fatalf("accepted %d bytes, over the limit %d", len(m.Bytes), max)
		}
		if h, err := ParseHeader(c.Protocol, m.Bytes); err != nil || h != m.Header {
			t.Fatalf("ParseHeader of the message's bytes = %+v, %v; want %+v", h, err, m.Header)
		}
		if c.Framed {
			if !bytes.Equal(m.Bytes, data[4:4+len(m.Bytes)]) {
				t.Fatal("framed message bytes differ from the frame")
			}
		} else {
			if !bytes.Equal(m.Bytes, data[:len(m.Bytes)]) {
				t.Fatal("buffered message bytes are not a prefix of the input")
			}
			r := reader(m.Bytes)
			m2, err := c.ReadMessage(r)
			if err != nil || m2.Header != m.Header || !bytes.Equal(m2.Bytes, m.Bytes) || r.Buffered() != 0 {
				t.Fatalf("re-reading the message: %+v, %v", m2, err)
			}
		}
		exc := AppendException(nil, c.Protocol, m.Header, "boom", ExcInternalError)
		if h, err := ParseHeader(c.Protocol, exc); err != nil || h != (Header{m.Name, Exception, m.SeqID}) {
			t.Fatalf("exception header = %+v, %v", h, err)
		}
		if _, err := (Codec{Protocol: c.Protocol, MaxBytes: max + 1024}).ReadMessage(reader(exc)); err != nil {
			t.Fatalf("the exception is not a valid message: %v", err)
		}
	})
}
