// Package thrift speaks namerd's Thrift name-interpreter protocol, both
// sides, as Linkerd 1.x does:
//
//   - Server serves the `Namer` service (namer.thrift: bind, addr, dtab,
//     delegate) for namerd's io.l5d.thriftNameInterpreter interface. It
//     accepts ThriftMux sessions (what Linkerd's io.l5d.namerd interpreter
//     opens) and plain framed TBinaryProtocol connections (what a
//     Finagle Thrift client, or any Thrift client, opens).
//   - Interpreter is a router's io.l5d.namerd interpreter: it binds names by
//     long-polling a namerd over ThriftMux.
//
// The long-poll protocol: every answer carries an opaque stamp; a request
// that carries the stamp of the current value waits until the value
// changes, any other stamp (the empty one included) is answered at once.
//
// Invariants: no input read from the network can panic the process or make
// it allocate more than a frame's worth (MaxFrameSize) per message; stamps
// are 8-byte big-endian counters that are unique per server process.
package thrift
