// Package thrift is the proxy side of Linkerd's `protocol: thrift` router:
// a server that reads Thrift calls from clients, and a client transport
// that forwards them to endpoints, one call in flight per connection.
//
// The router never decodes a call beyond its message header (name, type,
// sequence id): the payload is forwarded as bytes. Messages are framed
// (a 4-byte big-endian length before each message, TFramedTransport) or
// buffered (no length: the end of the message is found by walking its
// encoding, as TBufferedTransport peers expect), in the binary or compact
// protocol. Calls go through the router's tiers as an *http.Request that
// carries the *Message in its context (WithMessage), so that name
// resolution, the dtab, the balancer, failure accrual, retries, timeouts
// and stats are those of the http router; a failure is answered with a
// TApplicationException reply.
//
// Finagle's TTwitter extension is spoken both ways (ttwitter.go): the
// server accepts the upgrade call and reads the RequestHeader before each
// call (its dest names the call, its delegations are the call's local
// dtab, its trace is joined through l5d-ctx-trace), and the transport
// upgrades endpoint connections when asked (TransportOptions.TTwitter),
// writing a header with the router's trace. Endpoint connections may be
// TLS (TransportOptions.TLSFor), pooled per TLS configuration.
package thrift
