package mesh

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// The gRPC services of package io.linkerd.mesh and their full method
// names, as Linkerd's .proto files declare them.
const (
	InterpreterService = "io.linkerd.mesh.Interpreter"
	ResolverService    = "io.linkerd.mesh.Resolver"
	DelegatorService   = "io.linkerd.mesh.Delegator"
	CodecService       = "io.linkerd.mesh.Codec"

	MethodGetBoundTree       = "/" + InterpreterService + "/GetBoundTree"
	MethodStreamBoundTree    = "/" + InterpreterService + "/StreamBoundTree"
	MethodGetReplicas        = "/" + ResolverService + "/GetReplicas"
	MethodStreamReplicas     = "/" + ResolverService + "/StreamReplicas"
	MethodGetDtab            = "/" + DelegatorService + "/GetDtab"
	MethodStreamDtab         = "/" + DelegatorService + "/StreamDtab"
	MethodGetDelegateTree    = "/" + DelegatorService + "/GetDelegateTree"
	MethodStreamDelegateTree = "/" + DelegatorService + "/StreamDelegateTree"
	MethodReadDtab           = "/" + CodecService + "/ReadDtab"
	MethodShowDtab           = "/" + CodecService + "/ShowDtab"
	MethodReadPath           = "/" + CodecService + "/ReadPath"
	MethodShowPath           = "/" + CodecService + "/ShowPath"
)

// wireCodec is the gRPC codec of this package's messages. It is named
// "proto" (content-type application/grpc+proto, what Linkerd sends and
// expects) but never registered globally: that would replace the
// protobuf codec of every other gRPC user in the process (the etcd
// client). Servers and calls here force it instead.
type wireCodec struct{}

var _ encoding.Codec = wireCodec{}

// Marshal implements encoding.Codec.
func (wireCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(Message)
	if !ok {
		return nil, errNotMessage
	}
	return m.AppendWire(nil), nil
}

// Unmarshal implements encoding.Codec.
func (wireCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(Message)
	if !ok {
		return errNotMessage
	}
	return m.UnmarshalWire(data)
}

// Name implements encoding.Codec.
func (wireCodec) Name() string { return "proto" }

// callCodec is the call option every client call uses.
var callCodec = grpc.ForceCodec(wireCodec{})
