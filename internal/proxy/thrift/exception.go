package thrift

import (
	"encoding/binary"
	"io"
	"net"
)

// TApplicationException types (the `type` field, id 2).
const (
	ExcUnknown            int32 = 0
	ExcUnknownMethod      int32 = 1
	ExcInvalidMessageType int32 = 2
	ExcInternalError      int32 = 6
	ExcProtocolError      int32 = 7
)

// AppendException appends, in protocol p, an EXCEPTION message answering
// h: a TApplicationException {1: message, 2: type}, what Thrift servers
// reply when a call fails outside the handler.
func AppendException(dst []byte, p Protocol, h Header, message string, typ int32) []byte {
	if p == Compact {
		dst = append(dst, compactProtocolID, compactVersion|byte(Exception)<<5)
		dst = binary.AppendUvarint(dst, uint64(uint32(h.SeqID)))
		dst = binary.AppendUvarint(dst, uint64(len(h.Name)))
		dst = append(dst, h.Name...)
		dst = append(dst, 1<<4|ctBinary)
		dst = binary.AppendUvarint(dst, uint64(len(message)))
		dst = append(dst, message...)
		dst = append(dst, 1<<4|ctI32)
		dst = binary.AppendUvarint(dst, uint64(uint32(typ<<1)^uint32(typ>>31)))
		return append(dst, ctStop)
	}
	dst = binary.BigEndian.AppendUint32(dst, binaryVersion1|uint32(Exception))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(h.Name)))
	dst = append(dst, h.Name...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.SeqID))
	dst = append(dst, ttString, 0, 1)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(message)))
	dst = append(dst, message...)
	dst = append(dst, ttI32, 0, 2)
	dst = binary.BigEndian.AppendUint32(dst, uint32(typ))
	return append(dst, ttStop)
}

// WriteMessage writes an encoded message to w, after its frame length
// when the codec is framed (one writev on a TCP connection).
func (c Codec) WriteMessage(w io.Writer, msg []byte) error {
	if !c.Framed {
		_, err := w.Write(msg)
		return err
	}
	var lb [4]byte
	binary.BigEndian.PutUint32(lb[:], uint32(len(msg)))
	bufs := net.Buffers{lb[:], msg}
	_, err := bufs.WriteTo(w)
	return err
}
