package mesh

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// Conversions between the wire messages and Linnet's dtab and naming
// types (Linkerd's io.linkerd.mesh.Converters).

func pathToWire(p dtab.Path) *Path {
	out := &Path{Elems: make([][]byte, len(p))}
	for i, e := range p {
		out.Elems[i] = []byte(e)
	}
	return out
}

// pathFromWire converts a path; nil is the empty path. Empty elements are
// refused: no dtab path has one.
func pathFromWire(p *Path) (dtab.Path, error) {
	if p == nil {
		return dtab.Path{}, nil
	}
	out := make(dtab.Path, len(p.Elems))
	for i, e := range p.Elems {
		if len(e) == 0 {
			return nil, fmt.Errorf("path element %d is empty", i)
		}
		out[i] = string(e)
	}
	return out, nil
}

func nameTreeToWire(t dtab.NameTree) *NameTree {
	switch t.Kind {
	case dtab.Fail:
		return &NameTree{Kind: TreeFail}
	case dtab.Empty:
		return &NameTree{Kind: TreeEmpty}
	case dtab.Leaf:
		return &NameTree{Kind: TreeLeaf, Leaf: &Leaf{ID: pathToWire(t.Value)}}
	case dtab.Alt:
		out := &NameTree{Kind: TreeAlt, Alt: make([]NameTree, len(t.Alts))}
		for i, c := range t.Alts {
			out.Alt[i] = *nameTreeToWire(c)
		}
		return out
	case dtab.Union:
		out := &NameTree{Kind: TreeUnion, Union: make([]Weighted, len(t.Branches))}
		for i, b := range t.Branches {
			out.Union[i] = Weighted{Weight: b.Weight, Tree: nameTreeToWire(b.Tree)}
		}
		return out
	}
	return &NameTree{Kind: TreeNeg}
}

var errNoTree = errors.New("name tree has no node")

func nameTreeFromWire(t *NameTree) (dtab.NameTree, error) {
	if t == nil {
		return dtab.NameTree{}, errNoTree
	}
	switch t.Kind {
	case TreeNeg:
		return dtab.NegTree[dtab.Path](), nil
	case TreeFail:
		return dtab.FailTree[dtab.Path](), nil
	case TreeEmpty:
		return dtab.EmptyTree[dtab.Path](), nil
	case TreeLeaf:
		if t.Leaf == nil || t.Leaf.ID == nil {
			return dtab.NameTree{}, errors.New("name tree leaf has no id")
		}
		p, err := pathFromWire(t.Leaf.ID)
		return dtab.LeafTree(p), err
	case TreeAlt:
		alts := make([]dtab.NameTree, len(t.Alt))
		for i := range t.Alt {
			var err error
			if alts[i], err = nameTreeFromWire(&t.Alt[i]); err != nil {
				return dtab.NameTree{}, err
			}
		}
		return dtab.AltTree(alts...), nil
	case TreeUnion:
		ws := make([]dtab.Weighted[dtab.Path], 0, len(t.Union))
		for _, w := range t.Union {
			sub, err := nameTreeFromWire(w.Tree)
			if err != nil {
				return dtab.NameTree{}, err
			}
			ws = append(ws, dtab.Weighted[dtab.Path]{Weight: w.Weight, Tree: sub})
		}
		return dtab.UnionTree(ws...), nil
	}
	return dtab.NameTree{}, errNoTree
}

func dentryToWire(d dtab.Dentry) *Dentry {
	px := &Prefix{Elems: make([]PrefixElem, len(d.Prefix))}
	for i, e := range d.Prefix {
		if e.Any {
			px.Elems[i] = PrefixElem{Wildcard: true, Set: true}
		} else {
			px.Elems[i] = PrefixElem{Label: []byte(e.Label), Set: true}
		}
	}
	return &Dentry{Prefix: px, Dst: nameTreeToWire(d.Dst)}
}

func dentryFromWire(d *Dentry) (dtab.Dentry, error) {
	if d.Prefix == nil || d.Dst == nil {
		return dtab.Dentry{}, errors.New("dentry without prefix or destination")
	}
	var out dtab.Dentry
	for i, e := range d.Prefix.Elems {
		switch {
		case e.Wildcard:
			out.Prefix = append(out.Prefix, dtab.PrefixElem{Any: true})
		case e.Set && len(e.Label) > 0:
			out.Prefix = append(out.Prefix, dtab.PrefixElem{Label: string(e.Label)})
		default:
			return dtab.Dentry{}, fmt.Errorf("dentry prefix element %d is empty", i)
		}
	}
	var err error
	out.Dst, err = nameTreeFromWire(d.Dst)
	return out, err
}

func dtabToWire(d dtab.Dtab) *Dtab {
	out := &Dtab{Dentries: make([]Dentry, len(d))}
	for i, e := range d {
		out.Dentries[i] = *dentryToWire(e)
	}
	return out
}

// dtabFromWire converts a dtab; nil is the empty dtab.
func dtabFromWire(d *Dtab) (dtab.Dtab, error) {
	if d == nil {
		return nil, nil
	}
	out := make(dtab.Dtab, len(d.Dentries))
	for i := range d.Dentries {
		var err error
		if out[i], err = dentryFromWire(&d.Dentries[i]); err != nil {
			return nil, fmt.Errorf("dentry %d: %w", i, err)
		}
	}
	return out, nil
}

// boundTreeToWire converts a bound tree; a leaf without a bound name is
// a negative node, as in Linkerd.
func boundTreeToWire(t naming.BoundTree) *NameTree {
	switch t.Kind {
	case dtab.Fail:
		return &NameTree{Kind: TreeFail}
	case dtab.Empty:
		return &NameTree{Kind: TreeEmpty}
	case dtab.Leaf:
		if t.Value == nil {
			break
		}
		return &NameTree{Kind: TreeLeaf, Leaf: boundLeaf(t.Value)}
	case dtab.Alt:
		out := &NameTree{Kind: TreeAlt, Alt: make([]NameTree, len(t.Alts))}
		for i, c := range t.Alts {
			out.Alt[i] = *boundTreeToWire(c)
		}
		return out
	case dtab.Union:
		out := &NameTree{Kind: TreeUnion, Union: make([]Weighted, len(t.Branches))}
		for i, b := range t.Branches {
			out.Union[i] = Weighted{Weight: b.Weight, Tree: boundTreeToWire(b.Tree)}
		}
		return out
	}
	return &NameTree{Kind: TreeNeg}
}

// boundLeaf writes both id and residual: Linkerd needs them present.
func boundLeaf(b *naming.Bound) *Leaf {
	return &Leaf{ID: pathToWire(b.ID), Residual: pathToWire(b.Residual)}
}

// nopDentry is Finagle's Dentry.nop (/\x2f => ~): the dentry of a
// delegation root. Linkerd's client needs every delegate node to carry
// one.
func nopDentry() *Dentry {
	return &Dentry{Prefix: &Prefix{Elems: []PrefixElem{{Label: []byte("/"), Set: true}}}, Dst: &NameTree{Kind: TreeNeg}}
}

func isNop(d *Dentry) bool {
	return d == nil || (d.Prefix != nil && len(d.Prefix.Elems) == 1 && string(d.Prefix.Elems[0].Label) == "/" &&
		d.Dst != nil && d.Dst.Kind == TreeNeg)
}

// delegateToWire converts an explanation (namerd's DelegatorService).
func delegateToWire(n naming.DelegateNode) *DelegateTree {
	out := &DelegateTree{Path: pathToWire(n.Path), Dentry: nopDentry()}
	if n.Dentry != nil {
		out.Dentry = dentryToWire(*n.Dentry)
	}
	switch n.Kind {
	case naming.DelegateFail:
		out.Kind = TreeFail
	case naming.DelegateEmpty:
		out.Kind = TreeEmpty
	case naming.DelegateException:
		out.Kind, out.Exception = TreeException, "BoundDelegateTree Exception: "+n.Message
	case naming.DelegateDelegated:
		if n.Child == nil {
			out.Kind = TreeNeg
			break
		}
		out.Kind, out.Delegate = TreeDelegate, delegateToWire(*n.Child)
	case naming.DelegateTransformation:
		tr := &Transformation{Name: n.Name}
		if n.Bound != nil {
			tr.Leaf = boundLeaf(n.Bound)
		}
		if n.Child != nil {
			tr.Tree = delegateToWire(*n.Child)
		}
		out.Kind, out.Transformation = TreeTransformation, tr
	case naming.DelegateLeaf:
		if n.Bound == nil {
			out.Kind = TreeNeg
			break
		}
		out.Kind, out.Leaf = TreeLeaf, boundLeaf(n.Bound)
	case naming.DelegateAlt:
		out.Kind, out.Alt = TreeAlt, make([]DelegateTree, len(n.Alts))
		for i, c := range n.Alts {
			out.Alt[i] = *delegateToWire(c)
		}
	case naming.DelegateUnion:
		out.Kind, out.Union = TreeUnion, make([]DelegateWeighted, len(n.Branches))
		for i, b := range n.Branches {
			out.Union[i] = DelegateWeighted{Weight: b.Weight, Tree: delegateToWire(b.Tree)}
		}
	default:
		out.Kind = TreeNeg
	}
	return out
}

// MetaWeight is the endpoint metadata key of an endpoint's weight
// (Linkerd's Metadata.endpointWeight).
const MetaWeight = "endpoint_addr_weight"

// MetaNodeName is the endpoint metadata key of the node name.
const MetaNodeName = "nodeName"

// replicasFromAddr converts an address set for the Resolver. Addresses
// that are not IP literals are left out (namers publish IPs).
func replicasFromAddr(a naming.Addr) *Replicas {
	switch a.State {
	case naming.AddrPending:
		return &Replicas{Kind: ReplicasPending}
	case naming.AddrNeg:
		return &Replicas{Kind: ReplicasNeg}
	case naming.AddrFailed:
		msg := "address resolution failed"
		if a.Err != nil {
			msg = a.Err.Error()
		}
		return &Replicas{Kind: ReplicasFailed, Message: msg}
	}
	out := &Replicas{Kind: ReplicasBound, Endpoints: make([]Endpoint, 0, len(a.Addrs)), Metadata: stringMeta(a.Meta)}
	for _, x := range a.Addrs {
		ip := net.ParseIP(x.Host)
		if ip == nil || x.Port < 0 || x.Port > 65535 {
			continue
		}
		e := Endpoint{InetAF: INET6, Address: ip, Port: int32(x.Port), Metadata: stringMeta(x.Meta)}
		if v4 := ip.To4(); v4 != nil {
			e.InetAF, e.Address = INET4, v4
		}
		if x.Weight > 0 && x.Weight != 1 {
			if e.Metadata == nil {
				e.Metadata = map[string]string{}
			}
			e.Metadata[MetaWeight] = strconv.FormatFloat(x.Weight, 'g', -1, 64)
		}
		if nn, ok := x.Meta[MetaNodeName].(string); ok {
			e.Meta = &EndpointMeta{NodeName: nn}
		}
		out.Endpoints = append(out.Endpoints, e)
	}
	return out
}

func stringMeta(m map[string]any) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		} else {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// addrFromReplicas converts a Resolver answer. Endpoints whose address
// does not fit their family, or whose port is out of range, are left
// out; duplicates are merged (a replica set is a set).
func addrFromReplicas(r *Replicas) naming.Addr {
	switch r.Kind {
	case ReplicasPending:
		return naming.Addr{State: naming.AddrPending}
	case ReplicasFailed:
		msg := r.Message
		if msg == "" {
			msg = "unknown"
		}
		return naming.Addr{State: naming.AddrFailed, Err: fmt.Errorf("namerd: %s", msg)}
	case ReplicasBound:
	default: // neg, or no result (Linkerd reads that as neg)
		return naming.Addr{State: naming.AddrNeg}
	}
	out := naming.Addr{State: naming.AddrBound, Addrs: make([]naming.Address, 0, len(r.Endpoints)), Meta: anyMeta(r.Metadata)}
	seen := map[string]bool{}
	for _, e := range r.Endpoints {
		want := net.IPv4len
		if e.InetAF == INET6 {
			want = net.IPv6len
		}
		if len(e.Address) != want || (e.InetAF != INET4 && e.InetAF != INET6) || e.Port < 0 || e.Port > 65535 {
			continue
		}
		x := naming.Address{Host: net.IP(e.Address).String(), Port: int(e.Port), Weight: 1, Meta: anyMeta(e.Metadata)}
		if w, err := strconv.ParseFloat(e.Metadata[MetaWeight], 64); err == nil && w >= 0 {
			x.Weight = w
		}
		if e.Meta != nil && e.Meta.NodeName != "" {
			if x.Meta == nil {
				x.Meta = map[string]any{}
			}
			x.Meta[MetaNodeName] = e.Meta.NodeName
		}
		if k := x.HostPort(); !seen[k] {
			seen[k] = true
			out.Addrs = append(out.Addrs, x)
		}
	}
	return out
}

func anyMeta(m map[string]string) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
