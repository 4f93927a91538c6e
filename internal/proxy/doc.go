// Package proxy is the protocol-independent part of the HTTP edge: the
// identifier contract and registry, the hop-by-hop and Via rules
// (httputil.ReverseProxy's, RFC 7230 §6.1), the l5d-* context headers
// (spec/headers-admin.md §1-§3) and the one mapping from typed errors to
// Linkerd's error responses (status + l5d-err, §4). proxy/http1 (and later
// proxy/h2) build on it and never import each other.
package proxy
