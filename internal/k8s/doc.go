// Package k8s is the Kubernetes API access shared by Linnet's Kubernetes
// plug-ins (the io.l5d.k8s namers and transformers, the io.l5d.ingress
// identifier, namerd's io.l5d.k8s dtab store).
//
// Invariants:
//   - client-go is imported only here and in the packages below
//     internal/namer/k8s, internal/storage/k8s and internal/k8s; its types
//     never cross into the rest of Linnet. Cluster hands out plain structs
//     (Service, Endpoints, Ingress) converted at this boundary.
//   - One informer per resource kind per API endpoint, however many names or
//     plug-ins watch it: Clusters are shared by connection key and
//     reference-counted, and stop their informers when the last user's
//     context ends.
//   - Only the typed clients in use (core/v1, discovery/v1, networking/v1)
//     are linked, not the whole clientset.
package k8s
