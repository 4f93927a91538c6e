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
package thrift
