package thrift

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	athrift "github.com/apache/thrift/lib/go/thrift"

	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/router"
)

func libProtocol(p Protocol, buf athrift.TTransport) athrift.TProtocol {
	if p == Compact {
		return athrift.NewTCompactProtocolConf(buf, &athrift.TConfiguration{})
	}
	return athrift.NewTBinaryProtocolConf(buf, &athrift.TConfiguration{})
}

// libWriteHeader writes h with the apache/thrift library, as code
// generated from Finagle's tracing.thrift would, plus an unknown field
// (id 20) and a known id with another type (id 9 as i32) that a reader
// must skip.
func libWriteHeader(t testing.TB, prot athrift.TProtocol, h *RequestHeader, extra bool) {
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	i64 := func(id int16, v int64) {
		must(prot.WriteFieldBegin(ctx, "", athrift.I64, id))
		must(prot.WriteI64(ctx, v))
		must(prot.WriteFieldEnd(ctx))
	}
	str := func(id int16, v string) {
		must(prot.WriteFieldBegin(ctx, "", athrift.STRING, id))
		must(prot.WriteString(ctx, v))
		must(prot.WriteFieldEnd(ctx))
	}
	must(prot.WriteStructBegin(ctx, "RequestHeader"))
	i64(1, h.TraceID)
	i64(2, h.SpanID)
	if extra {
		must(prot.WriteFieldBegin(ctx, "", athrift.I32, 20))
		must(prot.WriteI32(ctx, 7))
		must(prot.WriteFieldEnd(ctx))
		must(prot.WriteFieldBegin(ctx, "", athrift.I32, 9))
		must(prot.WriteI32(ctx, 7))
		must(prot.WriteFieldEnd(ctx))
	}
	if h.HasParent {
		i64(3, h.ParentSpanID)
	}
	if h.Sampled != nil {
		must(prot.WriteFieldBegin(ctx, "", athrift.BOOL, 5))
		must(prot.WriteBool(ctx, *h.Sampled))
		must(prot.WriteFieldEnd(ctx))
	}
	if h.HasClientID {
		must(prot.WriteFieldBegin(ctx, "", athrift.STRUCT, 6))
		must(prot.WriteStructBegin(ctx, "ClientId"))
		str(1, h.ClientID)
		must(prot.WriteFieldStop(ctx))
		must(prot.WriteStructEnd(ctx))
		must(prot.WriteFieldEnd(ctx))
	}
	if h.Flags != 0 {
		i64(7, h.Flags)
	}
	must(prot.WriteFieldBegin(ctx, "", athrift.LIST, 8))
	must(prot.WriteListBegin(ctx, athrift.STRUCT, len(h.Contexts)))
	for _, c := range h.Contexts {
		must(prot.WriteStructBegin(ctx, "RequestContext"))
		must(prot.WriteFieldBegin(ctx, "", athrift.STRING, 1))
		must(prot.WriteBinary(ctx, c.Key))
		must(prot.WriteFieldEnd(ctx))
		must(prot.WriteFieldBegin(ctx, "", athrift.STRING, 2))
		must(prot.WriteBinary(ctx, c.Value))
		must(prot.WriteFieldEnd(ctx))
		must(prot.WriteFieldStop(ctx))
		must(prot.WriteStructEnd(ctx))
	}
	must(prot.WriteListEnd(ctx))
	must(prot.WriteFieldEnd(ctx))
	if h.HasDest {
		str(9, h.Dest)
	}
	if h.Delegations != nil {
		must(prot.WriteFieldBegin(ctx, "", athrift.LIST, 10))
		must(prot.WriteListBegin(ctx, athrift.STRUCT, len(h.Delegations)))
		for _, d := range h.Delegations {
			must(prot.WriteStructBegin(ctx, "Delegation"))
			str(1, d.Src)
			str(2, d.Dst)
			must(prot.WriteFieldStop(ctx))
			must(prot.WriteStructEnd(ctx))
		}
		must(prot.WriteListEnd(ctx))
		must(prot.WriteFieldEnd(ctx))
	}
	if h.TraceIDHigh != 0 {
		i64(11, h.TraceIDHigh)
	}
	must(prot.WriteFieldStop(ctx))
	must(prot.WriteStructEnd(ctx))
}

// libReadHeader reads a RequestHeader with the library.
func libReadHeader(t testing.TB, prot athrift.TProtocol) *RequestHeader {
	ctx := context.Background()
	h := new(RequestHeader)
	fields := func(f func(id int16, typ athrift.TType) bool) {
		if _, err := prot.ReadStructBegin(ctx); err != nil {
			t.Fatal(err)
		}
		for {
			_, typ, id, err := prot.ReadFieldBegin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if typ == athrift.STOP {
				break
			}
			if !f(id, typ) {
				if err := prot.Skip(ctx, typ); err != nil {
					t.Fatal(err)
				}
			}
			_ = prot.ReadFieldEnd(ctx)
		}
		_ = prot.ReadStructEnd(ctx)
	}
	list := func(each func()) {
		_, n, err := prot.ReadListBegin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			each()
		}
		_ = prot.ReadListEnd(ctx)
	}
	fields(func(id int16, typ athrift.TType) bool {
		switch id {
		case 1:
			h.TraceID, _ = prot.ReadI64(ctx)
		case 2:
			h.SpanID, _ = prot.ReadI64(ctx)
		case 3:
			h.ParentSpanID, _ = prot.ReadI64(ctx)
			h.HasParent = true
		case 5:
			v, _ := prot.ReadBool(ctx)
			h.Sampled = &v
		case 6:
			h.HasClientID = true
			fields(func(id int16, _ athrift.TType) bool {
				if id == 1 {
					h.ClientID, _ = prot.ReadString(ctx)
					return true
				}
				return false
			})
		case 7:
			h.Flags, _ = prot.ReadI64(ctx)
		case 8:
			list(func() {
				var c RequestContext
				fields(func(id int16, _ athrift.TType) bool {
					switch id {
					case 1:
						c.Key, _ = prot.ReadBinary(ctx)
					case 2:
						c.Value, _ = prot.ReadBinary(ctx)
					default:
						return false
					}
					return true
				})
				h.Contexts = append(h.Contexts, c)
			})
		case 9:
			h.Dest, _ = prot.ReadString(ctx)
			h.HasDest = true
		case 10:
			h.Delegations = []Delegation{}
			list(func() {
				var d Delegation
				fields(func(id int16, _ athrift.TType) bool {
					switch id {
					case 1:
						d.Src, _ = prot.ReadString(ctx)
					case 2:
						d.Dst, _ = prot.ReadString(ctx)
					default:
						return false
					}
					return true
				})
				h.Delegations = append(h.Delegations, d)
			})
		case 11:
			h.TraceIDHigh, _ = prot.ReadI64(ctx)
		default:
			return false
		}
		return true
	})
	return h
}

func fullHeader() *RequestHeader {
	sampled := false
	h := &RequestHeader{
		TraceID: -5, SpanID: 1 << 62, ParentSpanID: 77, HasParent: true, Sampled: &sampled,
		ClientID: "tester", HasClientID: true, Flags: 1 | 2,
		Contexts: []RequestContext{{Key: []byte("com.twitter.finagle.Retries"), Value: []byte{0, 0, 0, 2}}, {Key: []byte("k"), Value: []byte("v")}},
		Dest:     "/users", HasDest: true, TraceIDHigh: -1 << 40,
	}
	for i := range 17 { // more than a compact list's short form holds
		h.Delegations = append(h.Delegations, Delegation{Src: fmt.Sprintf("/svc/s%d", i), Dst: "/$/inet/127.0.0.1/1"})
	}
	return h
}

// RequestHeaders written by the library parse to what was written, and
// those AppendRequestHeader writes are read back by the library, in both
// protocols; fields unknown or of another type are skipped.
func TestRequestHeaderLibrary(t *testing.T) {
	sampled := true
	headers := map[string]*RequestHeader{
		"full":    fullHeader(),
		"minimal": {TraceID: 1, SpanID: 2},
		"sampled": {TraceID: 1, SpanID: 2, Sampled: &sampled, Delegations: []Delegation{}},
	}
	for _, p := range []Protocol{Binary, Compact} {
		for name, h := range headers {
			t.Run(p.String()+"/"+name, func(t *testing.T) {
				buf := athrift.NewTMemoryBuffer()
				libWriteHeader(t, libProtocol(p, buf), h, true)
				got, err := ParseRequestHeader(p, buf.Bytes())
				if err != nil || !reflect.DeepEqual(got, h) {
					t.Fatalf("parsed %+v, %v\nwant %+v", got, err, h)
				}
				b := AppendRequestHeader(nil, p, h)
				buf = athrift.NewTMemoryBuffer()
				buf.Write(b)
				if got := libReadHeader(t, libProtocol(p, buf)); !reflect.DeepEqual(got, h) || buf.Len() != 0 {
					t.Fatalf("the library read %+v (%d bytes left)\nwant %+v", got, buf.Len(), h)
				}
			})
		}
	}
}

func TestParseRequestHeaderErrors(t *testing.T) {
	full := AppendRequestHeader(nil, Binary, fullHeader())
	tests := []struct {
		name string
		p    Protocol
		b    []byte
		want string
	}{
		{"empty", Binary, nil, "truncated"},
		{"truncated", Binary, full[:len(full)-3], "truncated"},
		{"compact truncated", Compact, AppendRequestHeader(nil, Compact, fullHeader())[:20], "truncated"},
		{"trailing", Binary, append(append([]byte(nil), full...), 0), "1 bytes after its end"},
		{"huge list", Binary, []byte{ttList, 0, 8, ttStruct, 0x7f, 0, 0, 0}, "list of 2130706432 elements"},
		{"list of strings", Binary, []byte{ttList, 0, 8, ttString, 0, 0, 0, 1, 0, 0, 0, 0, 0}, "list of type 11, want 12"},
		{"bad type", Binary, []byte{99, 0, 1}, "binary field type 99"},
		{"bad utf-8", Binary, []byte{ttString, 0, 9, 0, 0, 0, 1, 0xff, 0}, "not UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRequestHeader(tt.p, tt.b)
			var pe *ProtocolError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "TTwitter request header") {
				t.Errorf("err = %v; want a ProtocolError about the TTwitter request header containing %q", err, tt.want)
			}
		})
	}
}

// ReadHeaded splits a header struct from the message after it, framed
// (one frame) and buffered, in both protocols; writeHeaded writes what
// it reads.
func TestReadHeaded(t *testing.T) {
	for mode := range 4 {
		c := Codec{Protocol: Protocol(mode & 1), Framed: mode&2 != 0}
		t.Run(fmt.Sprintf("%v framed=%v", c.Protocol, c.Framed), func(t *testing.T) {
			head := AppendRequestHeader(nil, c.Protocol, fullHeader())
			msg := encode(t, c.Protocol, "echo", athrift.CALL, 9)
			var w bytes.Buffer
			if err := c.writeHeaded(&w, head, msg); err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("next"))
			r := bufio.NewReader(&w)
			gotHead, m, err := c.ReadHeaded(r)
			if err != nil || !bytes.Equal(gotHead, head) || !bytes.Equal(m.Bytes, msg) || m.Header != (Header{"echo", Call, 9}) {
				t.Fatalf("ReadHeaded = %d header bytes, %+v, %v", len(gotHead), m, err)
			}
			if rest, _ := io.ReadAll(r); string(rest) != "next" {
				t.Errorf("left %q after the message; want %q", rest, "next")
			}
			if _, _, err := c.ReadHeaded(bufio.NewReader(bytes.NewReader(nil))); err != io.EOF {
				t.Errorf("at the end: %v; want io.EOF", err)
			}
		})
	}
}

// FuzzRequestHeader feeds arbitrary bytes to ParseRequestHeader in both
// protocols (bit 0 of mode: compact): it must never panic, and what it
// accepts must encode and parse back to the same header.
func FuzzRequestHeader(f *testing.F) {
	for _, p := range []Protocol{Binary, Compact} {
		b := AppendRequestHeader(nil, p, fullHeader())
		f.Add(uint8(p), b)
		f.Add(uint8(p), b[:len(b)/2])
		f.Add(uint8(p), AppendRequestHeader(nil, p, &RequestHeader{TraceID: 1, SpanID: 1}))
	}
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		p := Protocol(mode & 1)
		h, err := ParseRequestHeader(p, data)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		again, err := ParseRequestHeader(p, AppendRequestHeader(nil, p, h))
		if err != nil || !reflect.DeepEqual(again, h) {
			t.Fatalf("round trip: %+v, %v\nwant %+v", again, err, h)
		}
	})
}

// The server accepts the TTwitter upgrade and then reads a RequestHeader
// before each call (here buffered, compact): the dest is part of the
// name, the delegations are the local dtab and the trace is on the
// request; replies carry a ResponseHeader. The transport upgrades its
// connection and sends the request's trace in the header. A header that
// does not parse is answered PROTOCOL_ERROR and the connection closed.
func TestServerAndTransportTTwitter(t *testing.T) {
	c := Codec{Protocol: Compact}
	type seen struct {
		dst   router.Dst
		trace string
		hdr   *RequestHeader
	}
	got := make(chan seen, 4)
	_, addr := startServer(t, ServerParams{Codec: c, MethodInDst: true, Router: routerFunc(func(r *http.Request, d router.Dst) (*http.Response, error) {
		m := MessageFrom(r.Context())
		got <- seen{d, r.Header.Get("L5d-Ctx-Trace"), m.TTwitter}
		return echoRouter(Compact)(r, d)
	})})

	rc := dialRaw(t, addr, c)
	rc.send(t, AppendUpgradeCall(nil, Compact, 0))
	if m := rc.recv(t); m.Header != (Header{UpgradeMethod, Reply, 0}) {
		t.Fatalf("upgrade answered %+v", m.Header)
	}
	sampled := true
	h := &RequestHeader{TraceID: 7, SpanID: 8, Sampled: &sampled, Dest: "/users/v2", HasDest: true,
		Delegations: []Delegation{{Src: "/svc/users", Dst: "/$/inet/127.0.0.1/1"}}}
	if err := c.writeHeaded(rc, AppendRequestHeader(nil, Compact, h), encode(t, Compact, "echo", athrift.CALL, 3)); err != nil {
		t.Fatal(err)
	}
	head, reply, err := c.ReadHeaded(rc.br)
	if err != nil || !bytes.Equal(head, emptyStruct) {
		t.Fatalf("reply: header %x, %v", head, err)
	}
	if exc := readException(t, Compact, reply); exc.Error() != "dst=/svc/users/v2/echo" {
		t.Errorf("routed to %q; want /svc/users/v2/echo", exc.Error())
	}
	s := <-got
	if s.dst.Local.String() != "/svc/users=>/$/inet/127.0.0.1/1" {
		t.Errorf("local dtab %q", s.dst.Local.String())
	}
	if tr, ok := proxy.ParseTrace(s.trace); !ok || tr.TraceID != 7 || tr.SpanID != 8 || tr.Flags != flagSamplingKnown|flagSampled {
		t.Errorf("l5d-ctx-trace %q = %+v; want trace 7 span 8 sampled", s.trace, tr)
	}

	// The transport, upgraded, sends the request's trace.
	tp := NewTransport(addr, TransportOptions{Codec: c, TTwitter: true})
	defer tp.Close()
	call, _ := c.ReadMessage(reader(encode(t, Compact, "echo", athrift.CALL, 4)))
	call.TTwitter = &RequestHeader{ClientID: "me", HasClientID: true}
	req, _ := http.NewRequest("POST", "thrift://x/echo", nil)
	req.Header.Set("L5d-Ctx-Trace", proxy.Trace{SpanID: 21, ParentID: 20, TraceID: 19, Flags: flagSamplingKnown}.Encode())
	resp, err := tp.RoundTrip(req.WithContext(WithMessage(req.Context(), call)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if m := resp.Body.(*ReplyBody).Message(); m == nil || m.SeqID != 4 || m.Type != Exception {
		t.Errorf("transport reply %+v", m)
	}
	s = <-got
	if s.hdr == nil || s.hdr.TraceID != 19 || s.hdr.SpanID != 21 || s.hdr.ParentSpanID != 20 || s.hdr.Sampled == nil || *s.hdr.Sampled || s.hdr.ClientID != "me" {
		t.Errorf("header at the server %+v; want trace 19 span 21 parent 20, not sampled, client me", s.hdr)
	}

	// A header that does not parse: a struct whose contexts (field 8) are
	// a list of strings.
	bad := []byte{8<<4 | ctList, 1<<4 | ctBinary, 1, 'x', ctStop}
	if err := c.writeHeaded(rc, bad, encode(t, Compact, "echo", athrift.CALL, 5)); err != nil {
		t.Fatal(err)
	}
	if _, reply, err = c.ReadHeaded(rc.br); err != nil {
		t.Fatalf("bad header: %v; want an exception", err)
	}
	if exc := readException(t, Compact, reply); exc.TypeId() != ExcProtocolError || !strings.Contains(exc.Error(), "list of type 11, want 12") || reply.SeqID != 5 {
		t.Errorf("bad header answered %d %q (seq %d); want PROTOCOL_ERROR about the list, seq 5", exc.TypeId(), exc.Error(), reply.SeqID)
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Errorf("after a bad header: %v; want the connection closed", err)
	}
}
