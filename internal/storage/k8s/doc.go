// Package k8s is namerd's io.l5d.k8s dtab store (spec/config.md §8.2):
// one custom resource per dtab namespace, group l5d.io, version v1alpha1,
// kind DTab, plural dtabs, object name = dtab namespace, body
// `dentries: [{prefix, dst}]` — the format Linkerd's namerd reads and
// writes, so both can share a cluster. The CRD is in
// deploy/kubernetes/dtab-crd.yaml.
//
// Invariants:
//   - Versions are the objects' resourceVersion; Update sends it back, so
//     the API server's optimistic concurrency gives compare-and-swap.
//   - Get, List and writes go to the API server (quorum reads), so an
//     acknowledged write is visible to the next read; Observe and
//     ObserveList come from one shared watch (informer) per store.
//   - A dtab namespace must be a valid Kubernetes object name (DNS-1123
//     subdomain); others are refused with ErrInvalidNamespace.
package k8s
