// Package k8s implements the Kubernetes namers io.l5d.k8s, io.l5d.k8s.ns
// and io.l5d.k8s.external, and the transformers io.l5d.k8s.daemonset and
// io.l5d.k8s.localnode (spec/config.md §4.7, §5).
//
// Invariants:
//   - Names resolve from shared informer caches (internal/k8s): one
//     EndpointSlice (or Endpoints) informer and one Service informer per API
//     endpoint, however many names, namers and transformers watch them.
//   - A name's bound id and its *naming.Bound stay the same while the
//     Service exists; only its address set changes, so routers keep their
//     balancers across scale-ups, renames of other ports, readiness flips.
//   - Negative results exactly where Linkerd 1 gives them (no Endpoints
//     object, port in no subset, unknown service port number, label
//     mismatch), so dtab fallbacks apply; a known port with no ready pods
//     binds to an empty address set.
//   - Per-name state lives only while someone watches it: lookups are
//     reference-counted and dropped on the last cancel, so names taken from
//     request headers cannot grow memory without bound.
package k8s
