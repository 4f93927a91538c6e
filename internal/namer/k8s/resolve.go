package k8s

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	kapi "github.com/linnet-mesh/linnet/internal/k8s"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// MetaNodeName is the address metadata key holding the pod's node.
const MetaNodeName = "nodeName"

// key names one watched Kubernetes name (already lower-cased).
type key struct {
	ns, port, svc string
	// label is the label value when the namer has a labelSelector.
	label    string
	hasLabel bool
}

// result is what a key resolves to right now.
type result struct {
	err     error // the name cannot be known (the API is unreachable)
	pending bool
	exists  bool // false: negative
	addrs   []naming.Address
}

func (r result) equal(o result) bool {
	if r.pending != o.pending || r.exists != o.exists || len(r.addrs) != len(o.addrs) || (r.err == nil) != (o.err == nil) {
		return false
	}
	if r.err != nil && r.err.Error() != o.err.Error() {
		return false
	}
	for i := range r.addrs {
		a, b := r.addrs[i], o.addrs[i]
		if a.Host != b.Host || a.Port != b.Port || a.Meta[MetaNodeName] != b.Meta[MetaNodeName] {
			return false
		}
	}
	return true
}

func (r result) addr() naming.Addr {
	switch {
	case r.err != nil:
		return naming.Addr{State: naming.AddrFailed, Err: r.err}
	case r.pending:
		return naming.Addr{State: naming.AddrPending}
	case !r.exists:
		return naming.Addr{State: naming.AddrNeg}
	}
	return naming.Addr{State: naming.AddrBound, Addrs: r.addrs}
}

// isPortNumber reports whether a port segment is a number (a Service port)
// rather than a name.
func isPortNumber(s string) (int32, bool) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, false
	}
	return int32(n), true
}

// labelsMatch applies a labelSelector segment: the Endpoints' (or, failing
// that, the Service's) label must equal the value.
func labelsMatch(k key, selector string, ep kapi.Endpoints, svc *kapi.Service) bool {
	if !k.hasLabel {
		return true
	}
	if v, ok := ep.Labels[selector]; ok {
		return strings.EqualFold(v, k.label)
	}
	if svc != nil {
		if v, ok := svc.Labels[selector]; ok {
			return strings.EqualFold(v, k.label)
		}
	}
	return false
}

// resolveEndpoints is io.l5d.k8s's rule (config.md §5): a port name is
// looked up among the endpoint groups' TCP port names; a port number is the
// Service port of that number, mapped through its targetPort (a number, or
// a name looked up as above). Ready addresses only.
func resolveEndpoints(k key, selector string, ep kapi.Endpoints, epFound bool, svc *kapi.Service) result {
	if !epFound || !labelsMatch(k, selector, ep, svc) {
		return result{}
	}
	portName := k.port
	var portNum int32
	if n, ok := isPortNumber(k.port); ok {
		if svc == nil {
			return result{}
		}
		var sp *kapi.ServicePort
		for i := range svc.Ports {
			if svc.Ports[i].Port == n && svc.Ports[i].Protocol == "TCP" {
				sp = &svc.Ports[i]
				break
			}
		}
		if sp == nil {
			return result{}
		}
		portName, portNum = sp.TargetPortName, sp.TargetPortNumber
		if portName != "" {
			portName = strings.ToLower(portName)
		}
	}
	found := false
	var addrs []naming.Address
	for _, g := range ep.Groups {
		port := int32(0)
		for _, p := range g.Ports {
			if p.Protocol != "TCP" {
				continue
			}
			if portName != "" && strings.ToLower(p.Name) == portName || portName == "" && p.Port == portNum {
				port = p.Port
				break
			}
		}
		if port == 0 {
			continue
		}
		found = true
		for _, a := range g.Ready {
			addrs = append(addrs, address(a.IP, int(port), a.NodeName))
		}
	}
	if !found {
		return result{}
	}
	return result{exists: true, addrs: normalize(addrs)}
}

// resolveExternal is io.l5d.k8s.external's rule: the Service's load
// balancer ingress addresses with the Service port of that name.
func resolveExternal(k key, selector string, svc *kapi.Service) result {
	if svc == nil || !labelsMatch(k, selector, kapi.Endpoints{}, svc) {
		return result{}
	}
	for _, p := range svc.Ports {
		if strings.ToLower(p.Name) != k.port && strconv.Itoa(int(p.Port)) != k.port {
			continue
		}
		var addrs []naming.Address
		for _, h := range svc.LoadBalancer {
			addrs = append(addrs, address(h, int(p.Port), ""))
		}
		return result{exists: true, addrs: normalize(addrs)}
	}
	return result{}
}

func address(host string, port int, node string) naming.Address {
	a := naming.Address{Host: host, Port: port, Weight: 1}
	if node != "" {
		a.Meta = map[string]any{MetaNodeName: node}
	}
	return a
}

// normalize sorts addresses and removes duplicates (an endpoint may sit in
// two slices while the controller moves it).
func normalize(as []naming.Address) []naming.Address {
	slices.SortFunc(as, func(a, b naming.Address) int {
		if c := compareHost(a.Host, b.Host); c != 0 {
			return c
		}
		return a.Port - b.Port
	})
	return slices.CompactFunc(as, func(a, b naming.Address) bool { return a.Host == b.Host && a.Port == b.Port })
}

func compareHost(a, b string) int {
	pa, ea := netip.ParseAddr(a)
	pb, eb := netip.ParseAddr(b)
	if ea == nil && eb == nil {
		return pa.Compare(pb)
	}
	return strings.Compare(a, b)
}
