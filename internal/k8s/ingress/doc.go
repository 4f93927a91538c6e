// Package ingress is the io.l5d.ingress identifier (spec/config.md §4.4)
// of http and h2 routers: it names a request (its Host or :authority, and
// its path) after the first matching rule of the Kubernetes
// Ingress resources (networking.k8s.io/v1) meant for this controller,
// producing /<dstPrefix>/<namespace>/<servicePort>/<serviceName>.
//
// Invariants:
//   - Matching reads an immutable snapshot rebuilt on every Ingress change
//     (regular expressions compiled once), so Identify takes no lock.
//   - All explicit rules of all ingresses (in the order this process first
//     saw the ingresses) are tried before any default backend.
//   - An Ingress is ours when its kubernetes.io/ingress.class annotation
//     equals ingressClassAnnotation, or, without the annotation, when its
//     spec.ingressClassName is unset or equals it.
//   - With statusAddress set, the identifier writes that address into the
//     status of every Ingress it serves.
package ingress
