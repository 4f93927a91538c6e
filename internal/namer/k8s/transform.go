package k8s

import (
	"net/netip"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// DaemonSetTransformer sends traffic for a destination to the router pod
// of a DaemonSet on the destination's node (Linkerd's linker-to-linker
// mode): every destination address is replaced by the DaemonSet Service's
// endpoint on the same node. Bound ids gain the marker
// /%/io.l5d.k8s.daemonset/<ns>/<port>/<service>.
type DaemonSetTransformer struct {
	marker      dtab.Path
	ds          watch.Value[naming.Addr]
	hostNetwork bool
	cache       boundCache
}

// Transform implements naming.Transformer.
func (t *DaemonSetTransformer) Transform(tree naming.BoundTree) naming.BoundTree {
	return transformTree(tree, &t.cache, func(b *naming.Bound) *naming.Bound {
		return &naming.Bound{
			ID:       t.marker.Concat(b.ID),
			Residual: b.Residual,
			Addr: derived[naming.Addr, naming.Addr, naming.Addr]{a: b.Addr, b: t.ds, f: func(dst, ds naming.Addr) naming.Addr {
				return daemonsetAddr(dst, ds, t.hostNetwork)
			}},
		}
	})
}

// daemonsetAddr maps each destination address to the DaemonSet endpoint on
// the same node: same nodeName metadata with hostNetwork, else same /24
// (IPv4) or /64 (IPv6) subnet. Destinations that exist but have no router
// on their node give a negative result.
func daemonsetAddr(dst, ds naming.Addr, hostNetwork bool) naming.Addr {
	if dst.State != naming.AddrBound {
		return dst
	}
	if ds.State != naming.AddrBound {
		return ds
	}
	var out []naming.Address
	for _, d := range dst.Addrs {
		for _, g := range ds.Addrs {
			if sameNode(d, g, hostNetwork) {
				out = append(out, naming.Address{Host: g.Host, Port: g.Port, Weight: 1, Meta: g.Meta})
				break
			}
		}
	}
	if len(out) == 0 && len(dst.Addrs) > 0 {
		return naming.Addr{State: naming.AddrNeg}
	}
	return naming.Addr{State: naming.AddrBound, Addrs: normalize(out), Meta: dst.Meta}
}

func sameNode(a, b naming.Address, hostNetwork bool) bool {
	if hostNetwork {
		na, _ := a.Meta[MetaNodeName].(string)
		nb, _ := b.Meta[MetaNodeName].(string)
		return na != "" && na == nb
	}
	return sameSubnet(a.Host, b.Host)
}

// sameSubnet reports whether two IPs share a /24 (IPv4) or /64 (IPv6):
// Kubernetes gives each node one pod CIDR, conventionally that size.
func sameSubnet(a, b string) bool {
	pa, err1 := netip.ParseAddr(a)
	pb, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil || pa.Is4() != pb.Is4() {
		return false
	}
	bits := 64
	if pa.Unmap().Is4() {
		bits = 24
		pa, pb = pa.Unmap(), pb.Unmap()
	}
	p, err := pa.Prefix(bits)
	return err == nil && p.Contains(pb)
}

// LocalNodeTransformer keeps only the destination addresses on this node:
// in the /24 of POD_IP, or (hostNetwork) whose nodeName is NODE_NAME. Bound
// ids gain the marker /%/io.l5d.k8s.localnode/<POD_IP or NODE_NAME>.
type LocalNodeTransformer struct {
	marker      dtab.Path
	local       string // the pod IP, or the node name with hostNetwork
	hostNetwork bool
	cache       boundCache
}

// Transform implements naming.Transformer.
func (t *LocalNodeTransformer) Transform(tree naming.BoundTree) naming.BoundTree {
	return transformTree(tree, &t.cache, func(b *naming.Bound) *naming.Bound {
		return &naming.Bound{
			ID:       t.marker.Concat(b.ID),
			Residual: b.Residual,
			Addr:     mapped[naming.Addr, naming.Addr]{v: b.Addr, f: t.filter},
		}
	})
}

func (t *LocalNodeTransformer) filter(a naming.Addr) naming.Addr {
	if a.State != naming.AddrBound {
		return a
	}
	out := make([]naming.Address, 0, len(a.Addrs))
	for _, x := range a.Addrs {
		var keep bool
		if t.hostNetwork {
			n, _ := x.Meta[MetaNodeName].(string)
			keep = n != "" && n == t.local
		} else {
			keep = sameSubnet(x.Host, t.local)
		}
		if keep {
			out = append(out, x)
		}
	}
	return naming.Addr{State: naming.AddrBound, Addrs: out, Meta: a.Meta}
}
