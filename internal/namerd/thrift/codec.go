package thrift

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/thrift/lib/go/thrift"
)

// MaxFrameSize bounds a mux frame or framed-Thrift message, in bytes.
const MaxFrameSize = 16 << 20

var strict = true

func newProtocol(t thrift.TTransport) thrift.TProtocol {
	return thrift.NewTBinaryProtocolConf(t, &thrift.TConfiguration{
		MaxMessageSize:     MaxFrameSize,
		MaxFrameSize:       MaxFrameSize,
		TBinaryStrictRead:  &strict,
		TBinaryStrictWrite: &strict,
	})
}

// writer is a result or argument struct that can encode itself.
type writer interface{ write(*enc) }

// encodeMessage encodes a whole TBinaryProtocol message: header, then a
// struct with field fid holding v (fid 1 for call arguments, 0 for a
// successful result, the exception's id for a declared exception).
func encodeMessage(name string, typ thrift.TMessageType, seq int32, fid int16, v writer) ([]byte, error) {
	buf := thrift.NewTMemoryBufferLen(256)
	ctx := context.Background()
	e := &enc{ctx: ctx, p: newProtocol(buf)}
	e.keep(e.p.WriteMessageBegin(ctx, name, typ, seq))
	e.begin()
	e.field(fid, thrift.STRUCT)
	v.write(e)
	e.end()
	e.keep(e.p.WriteMessageEnd(ctx))
	e.keep(e.p.Flush(ctx))
	if e.err != nil {
		return nil, e.err
	}
	return buf.Bytes(), nil
}

// encodeAppException encodes a TApplicationException reply.
func encodeAppException(name string, seq int32, typ int32, msg string) ([]byte, error) {
	buf := thrift.NewTMemoryBufferLen(128)
	ctx := context.Background()
	p := newProtocol(buf)
	if err := p.WriteMessageBegin(ctx, name, thrift.EXCEPTION, seq); err != nil {
		return nil, err
	}
	if err := thrift.NewTApplicationException(typ, msg).Write(ctx, p); err != nil {
		return nil, err
	}
	if err := p.WriteMessageEnd(ctx); err != nil {
		return nil, err
	}
	if err := p.Flush(ctx); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Call is a decoded request to the Namer service. Exactly one of the
// request fields is set, per Method; an unknown method leaves all nil.
type Call struct {
	Method   string
	Seq      int32
	Bind     *BindReq
	Addr     *AddrReq
	Dtab     *DtabReq
	Delegate *DelegateReq
}

// DecodeCall decodes a TBinaryProtocol CALL (or ONEWAY) message. It never
// panics; a malformed message is an error.
func DecodeCall(b []byte) (*Call, error) {
	buf := thrift.NewTMemoryBufferLen(len(b))
	_, _ = buf.Write(b)
	ctx := context.Background()
	d := &dec{ctx: ctx, p: newProtocol(buf)}
	name, typ, seq, err := d.p.ReadMessageBegin(ctx)
	if err != nil {
		return nil, fmt.Errorf("thrift message header: %w", err)
	}
	if typ != thrift.CALL && typ != thrift.ONEWAY {
		return nil, fmt.Errorf("thrift message %q has type %d, want a call", name, typ)
	}
	c := &Call{Method: name, Seq: seq}
	err = d.structFields(func(id int16, t thrift.TType) (bool, error) {
		if id != 1 || t != thrift.STRUCT {
			return false, nil
		}
		switch name {
		case MethodBind:
			c.Bind = &BindReq{}
			return true, c.Bind.read(d)
		case MethodAddr:
			c.Addr = &AddrReq{}
			return true, c.Addr.read(d)
		case MethodDtab:
			c.Dtab = &DtabReq{}
			return true, c.Dtab.read(d)
		case MethodDelegate:
			c.Delegate = &DelegateReq{}
			return true, c.Delegate.read(d)
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("thrift %s arguments: %w", name, err)
	}
	if err := d.p.ReadMessageEnd(ctx); err != nil {
		return nil, err
	}
	switch {
	case name == MethodBind && c.Bind == nil:
		c.Bind = &BindReq{}
	case name == MethodAddr && c.Addr == nil:
		c.Addr = &AddrReq{}
	case name == MethodDtab && c.Dtab == nil:
		c.Dtab = &DtabReq{}
	case name == MethodDelegate && c.Delegate == nil:
		c.Delegate = &DelegateReq{}
	}
	return c, nil
}

// ErrBadReply is wrapped by reply decoding errors.
var ErrBadReply = errors.New("malformed thrift reply")

// reader is a result value or exception that can decode itself.
type reader interface{ read(*dec) error }

// decodeReply decodes a REPLY to method: the success value into ok, or a
// declared exception (field 1) into exc, which is then returned as the
// error. A TApplicationException is returned as the error too.
func decodeReply(b []byte, method string, ok reader, exc interface {
	reader
	error
}) error {
	buf := thrift.NewTMemoryBufferLen(len(b))
	_, _ = buf.Write(b)
	ctx := context.Background()
	d := &dec{ctx: ctx, p: newProtocol(buf)}
	name, typ, _, err := d.p.ReadMessageBegin(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadReply, err)
	}
	if name != method {
		return fmt.Errorf("%w: answer to %q, want %q", ErrBadReply, name, method)
	}
	switch typ {
	case thrift.EXCEPTION:
		ae := thrift.NewTApplicationException(thrift.UNKNOWN_APPLICATION_EXCEPTION, "")
		if err := ae.Read(ctx, d.p); err != nil {
			return fmt.Errorf("%w: %v", ErrBadReply, err)
		}
		return ae
	case thrift.REPLY:
	default:
		return fmt.Errorf("%w: message type %d", ErrBadReply, typ)
	}
	var got, failed bool
	err = d.structFields(func(id int16, t thrift.TType) (bool, error) {
		switch {
		case id == 0 && t == thrift.STRUCT:
			got = true
			return true, ok.read(d)
		case id == 1 && t == thrift.STRUCT:
			failed = true
			return true, exc.read(d)
		}
		return false, nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrBadReply, err)
	case failed:
		return exc
	case !got:
		return fmt.Errorf("%w: %s returned no value", ErrBadReply, method)
	}
	return nil
}

// (dtabFailure and delegationFailure carry one string field.)
func (f *DtabFailure) read(d *dec) error       { return readReason(d, &f.Reason) }
func (f *DelegationFailure) read(d *dec) error { return readReason(d, &f.Reason) }
