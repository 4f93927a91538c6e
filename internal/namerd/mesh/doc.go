// Package mesh speaks Linkerd 1.x's io.l5d.mesh protocol, both sides: the
// gRPC services of package io.linkerd.mesh (Interpreter, Resolver,
// Delegator and Codec, from Linkerd's mesh/core/src/main/protobuf/*.proto)
// that namerd's io.l5d.mesh interface serves (default 127.0.0.1:4321), and
// the router's io.l5d.mesh interpreter that binds names through them with
// server-streaming watches.
//
// Wire format. The messages are hand-written Go types encoded with
// google.golang.org/protobuf/encoding/protowire, and a gRPC codec that
// accepts only them (wire.go, codec.go); there is no generated code and no
// protoc. We chose this over building descriptors at run time (dynamicpb)
// because:
//   - the name trees are recursive, and a hand-written decoder bounds their
//     depth (MaxTreeDepth) and never allocates more than the message it was
//     given, so a hostile peer cannot make either side recurse deeply;
//   - Linkerd's Scala runtime treats every proto3 field as optional
//     (Option[T]) and drops values whose fields are absent: an Endpoint
//     without inet_af, a weighted branch without weight, a delegate node
//     without dentry. proto3 omits default values, so a standard encoder
//     would make a real Linkerd router skip an INET4 endpoint. This encoder
//     writes every field Linkerd writes, at its default value too;
//   - there is no reflection on the hot path (a bound tree or replica set
//     per update per watch).
//
// Field names and numbers are Linkerd's; wire_test.go pins them with bytes
// derived by hand.
//
// Invariants: no input read from the network panics or makes a decoder
// recurse deeper than MaxTreeDepth; every stream sends a message only when
// its value changed; the router side keeps its last state while namerd is
// unreachable and reopens streams with jittered, doubling backoff.
package mesh
