// Package h2 is the HTTP/2 edge of a router (protocol: h2), the sibling
// of proxy/http1: the server (h2c with prior knowledge or by HTTP/1.1
// Upgrade, and h2 over TLS with ALPN), the handler that forwards streams
// through the router, the pooled per-endpoint client transport, the h2
// identifiers, and gRPC support: statuses read from headers or trailers,
// the io.l5d.h2.grpc.* classifiers, and proxy failures answered as gRPC
// statuses.
//
// Invariants: bodies are never buffered (each DATA frame read from one
// side is written and flushed to the other, so flow control propagates
// end to end and bidirectional streams work); trailers are forwarded
// after the body, including ones never announced (grpc-status);
// connection-specific headers are dropped (RFC 9113 §8.2.2) and
// "te: trailers" is kept. HTTP/2 itself is net/http's (server and
// client); golang.org/x/net/http2 is imported here and nowhere else, for
// the h2c Upgrade only.
package h2
