// Package router routes one request from its logical name to one endpoint
// through three cached tiers, as Linkerd 1's Router does:
//
//   - the path tier, keyed by logical name plus the request's local dtab,
//     binds the name through the interpreter and keeps the bound tree
//     current (service policy: stats, total timeout, retries);
//   - the bound tier, keyed by bound id (a replica set), balances over the
//     bound name's live address set (client policy: stats, balancer);
//   - the client tier, keyed by endpoint address, holds the pooled
//     connections (per-attempt timeout, transport).
//
// Caching is bottom-up: many paths share a bound entry, many bound names
// share a client. Entries unused for the idle TTL are closed; requests in
// flight on a closed entry finish normally. The order of the modules in each
// tier is declared in stack.go and nowhere else.
//
// The router speaks http.RoundTripper: the protocol edge (proxy/http1)
// identifies the request, prepares it, and calls Router.RoundTrip.
package router
