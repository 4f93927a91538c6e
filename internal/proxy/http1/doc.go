// Package http1 is the HTTP/1.1 edge of a router: the server handler that
// identifies requests and forwards them through the router with
// httputil.ReverseProxy's rules (hop-by-hop headers, trailers, upgrades,
// streaming both ways), the pooled client transport, and the HTTP/1.1
// identifiers (io.l5d.header.token, io.l5d.methodAndHost, io.l5d.path,
// io.l5d.header, io.l5d.static).
package http1
