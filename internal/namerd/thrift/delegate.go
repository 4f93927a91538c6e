package thrift

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Delegation messages of namer.thrift.

// DelegateContents union members (field ids).
const (
	DelegateError          int16 = 1  // string
	DelegateEmpty          int16 = 2  // Void
	DelegateFail           int16 = 3  // Void
	DelegateNeg            int16 = 4  // Void
	DelegateDelegate       int16 = 5  // node id
	DelegateBoundLeaf      int16 = 6  // BoundName
	DelegatePathLeaf       int16 = 7  // Path
	DelegateAlt            int16 = 8  // list<node id>
	DelegateWeighted       int16 = 9  // list<WeightedNodeID>
	DelegateTransformation int16 = 10 // Transformation
)

// DelegateContents is the union of what a delegation node holds.
type DelegateContents struct {
	Kind           int16
	Error          string
	Delegate       int32
	BoundLeaf      BoundName
	PathLeaf       [][]byte
	Alt            []int32
	Weighted       []WeightedNodeID
	Transformation Transformation
}

// Transformation is a transformer's rewrite: the name before, and the node
// of the tree after.
type Transformation struct {
	Value BoundName // 1
	Tree  int32     // 2
}

// DelegateNode is one node: the path there, the dentry that led to it (for
// a transformation, the transformer's name), and its contents.
type DelegateNode struct {
	Path     [][]byte         // 1
	Dentry   string           // 2
	Contents DelegateContents // 3
}

// DelegateTree is a delegation flattened into numbered nodes.
type DelegateTree struct {
	Root  DelegateNode           // 1
	Nodes map[int32]DelegateNode // 2
}

// Delegation is delegate's answer (and part of its request).
type Delegation struct {
	Stamp []byte       // 1 (deprecated: delegate does not long-poll)
	Tree  DelegateTree // 2
	Ns    string       // 3
}

// DelegateReq is delegate's argument: the tree to explain is a single
// pathLeaf node.
type DelegateReq struct {
	Dtab       string     // 1
	Delegation Delegation // 2
	ClientID   [][]byte   // 3
}

// nopDentry is how Finagle shows Dentry.nop (prefix "/" as one element,
// destination ~): the dentry of nodes no dentry led to.
const nopDentry = `/\x2f=>~`

func (e *enc) delegateNode(n DelegateNode) {
	e.begin()
	e.path(1, n.Path)
	e.str(2, n.Dentry)
	e.field(3, thrift.STRUCT)
	e.begin()
	c := n.Contents
	switch c.Kind {
	case DelegateError:
		e.str(1, c.Error)
	case DelegateEmpty, DelegateFail, DelegateNeg:
		e.void(c.Kind)
	case DelegateDelegate:
		e.i32(5, c.Delegate)
	case DelegateBoundLeaf:
		e.boundName(6, c.BoundLeaf)
	case DelegatePathLeaf:
		e.path(7, c.PathLeaf)
	case DelegateAlt:
		e.field(8, thrift.LIST)
		e.keep(e.p.WriteListBegin(e.ctx, thrift.I32, len(c.Alt)))
		for _, id := range c.Alt {
			e.keep(e.p.WriteI32(e.ctx, id))
		}
	case DelegateWeighted:
		e.field(9, thrift.LIST)
		e.keep(e.p.WriteListBegin(e.ctx, thrift.STRUCT, len(c.Weighted)))
		for _, w := range c.Weighted {
			e.begin()
			e.double(1, w.Weight)
			e.i32(2, w.ID)
			e.end()
		}
	case DelegateTransformation:
		e.field(10, thrift.STRUCT)
		e.begin()
		e.boundName(1, c.Transformation.Value)
		e.i32(2, c.Transformation.Tree)
		e.end()
	default:
		e.keep(fmt.Errorf("delegate contents kind %d is not a DelegateContents member", c.Kind))
	}
	e.end()
	e.end()
}

func (e *enc) delegation(id int16, d *Delegation) {
	e.field(id, thrift.STRUCT)
	d.write(e)
}

func (d *Delegation) write(e *enc) {
	e.begin()
	e.bin(1, d.Stamp)
	e.field(2, thrift.STRUCT)
	writeTree(e, d.Tree.Root, d.Tree.Nodes, e.delegateNode)
	e.str(3, d.Ns)
	e.end()
}

func (r *DelegateReq) write(e *enc) {
	e.begin()
	e.str(1, r.Dtab)
	e.delegation(2, &r.Delegation)
	e.path(3, r.ClientID)
	e.end()
}

func (d *dec) i32List() ([]int32, error) {
	et, n, err := d.p.ReadListBegin(d.ctx)
	if err != nil {
		return nil, err
	}
	if et != thrift.I32 {
		return nil, fmt.Errorf("list of %s, want i32", et)
	}
	out := make([]int32, 0, min(n, 64))
	for range n {
		v, err := d.p.ReadI32(d.ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, d.p.ReadListEnd(d.ctx)
}

func (d *dec) weightedList() ([]WeightedNodeID, error) {
	et, n, err := d.p.ReadListBegin(d.ctx)
	if err != nil {
		return nil, err
	}
	if et != thrift.STRUCT {
		return nil, fmt.Errorf("list of %s, want struct", et)
	}
	out := make([]WeightedNodeID, 0, min(n, 64))
	for range n {
		var w WeightedNodeID
		err := d.structFields(func(id int16, t thrift.TType) (bool, error) {
			var err error
			switch {
			case id == 1 && t == thrift.DOUBLE:
				w.Weight, err = d.p.ReadDouble(d.ctx)
			case id == 2 && t == thrift.I32:
				w.ID, err = d.p.ReadI32(d.ctx)
			default:
				return false, nil
			}
			return true, err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, d.p.ReadListEnd(d.ctx)
}

func (d *dec) delegateNode(n *DelegateNode) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.LIST:
			n.Path, err = d.path()
		case id == 2 && t == thrift.STRING:
			n.Dentry, err = d.p.ReadString(d.ctx)
		case id == 3 && t == thrift.STRUCT:
			err = d.delegateContents(&n.Contents)
		default:
			return false, nil
		}
		return true, err
	})
}

func (d *dec) delegateContents(c *DelegateContents) error {
	set := 0
	err := d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == DelegateError && t == thrift.STRING:
			c.Error, err = d.p.ReadString(d.ctx)
		case (id == DelegateEmpty || id == DelegateFail || id == DelegateNeg) && t == thrift.STRUCT:
			err = d.structFields(func(int16, thrift.TType) (bool, error) { return false, nil })
		case id == DelegateDelegate && t == thrift.I32:
			c.Delegate, err = d.p.ReadI32(d.ctx)
		case id == DelegateBoundLeaf && t == thrift.STRUCT:
			err = d.boundName(&c.BoundLeaf)
		case id == DelegatePathLeaf && t == thrift.LIST:
			c.PathLeaf, err = d.path()
		case id == DelegateAlt && t == thrift.LIST:
			c.Alt, err = d.i32List()
		case id == DelegateWeighted && t == thrift.LIST:
			c.Weighted, err = d.weightedList()
		case id == DelegateTransformation && t == thrift.STRUCT:
			err = d.structFields(func(id int16, t thrift.TType) (bool, error) {
				var err error
				switch {
				case id == 1 && t == thrift.STRUCT:
					err = d.boundName(&c.Transformation.Value)
				case id == 2 && t == thrift.I32:
					c.Transformation.Tree, err = d.p.ReadI32(d.ctx)
				default:
					return false, nil
				}
				return true, err
			})
		default:
			return false, nil
		}
		c.Kind = id
		set++
		return true, err
	})
	if err == nil && set != 1 {
		err = fmt.Errorf("DelegateContents union has %d members set, want 1", set)
	}
	return err
}

func (r *Delegation) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRING:
			r.Stamp, err = d.p.ReadBinary(d.ctx)
		case id == 2 && t == thrift.STRUCT:
			err = readTree(d, &r.Tree.Root, &r.Tree.Nodes, d.delegateNode)
		case id == 3 && t == thrift.STRING:
			r.Ns, err = d.p.ReadString(d.ctx)
		default:
			return false, nil
		}
		return true, err
	})
}

func (r *DelegateReq) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRING:
			r.Dtab, err = d.p.ReadString(d.ctx)
		case id == 2 && t == thrift.STRUCT:
			err = r.Delegation.read(d)
		case id == 3 && t == thrift.LIST:
			r.ClientID, err = d.path()
		default:
			return false, nil
		}
		return true, err
	})
}

// ---- server ----

// DelegateTimeout bounds the explanation of one delegate request.
const DelegateTimeout = 2 * time.Second

// delegate explains a path. As in Linkerd, it does not long-poll: a
// request with an empty stamp is answered; one with a stamp (from an old
// long-polling client) is left pending until cancelled, so the client
// keeps its first answer.
func (s *Server) delegate(ctx context.Context, seq int32, req *DelegateReq) ([]byte, error) {
	fail := func(reason string) ([]byte, error) {
		return encodeMessage(MethodDelegate, thrift.REPLY, seq, 1, &DelegationFailure{Reason: reason})
	}
	if len(req.Delegation.Stamp) > 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	root := req.Delegation.Tree.Root
	if root.Contents.Kind != DelegatePathLeaf {
		return fail("delegation must be a single path leaf")
	}
	extra, err := dtab.Parse(req.Dtab)
	if err != nil {
		return fail(fmt.Sprintf("invalid dtab %q: %v", req.Dtab, err))
	}
	ns := req.Delegation.Ns
	ctx, cancel := context.WithTimeout(ctx, DelegateTimeout)
	defer cancel()
	nsDtab, err := awaitDtab(ctx, s.o.Store.Observe(ns))
	if err != nil {
		return fail(fmt.Sprintf("dtab namespace %q: %v", ns, err))
	}
	node, err := naming.Delegate(ctx, s.o.Interpreter, nsDtab.Concat(extra), toPath(root.Contents.PathLeaf))
	if err != nil {
		return fail(err.Error())
	}
	troot, nodes, _ := mkDelegateTree(node, nodeDentry(node.Dentry), 0)
	stamp := []byte{0, 0, 0, 0, 0, 0, 0, 1} // non-empty: old clients re-poll with it and wait
	return encodeMessage(MethodDelegate, thrift.REPLY, seq, 0, &Delegation{Stamp: stamp, Tree: DelegateTree{Root: troot, Nodes: nodes}, Ns: ns})
}

// awaitDtab returns the namespace's dtab once the store knows it (nil for
// an absent namespace).
func awaitDtab(ctx context.Context, v watch.Value[watch.Activity[storage.Observation]]) (dtab.Dtab, error) {
	ch := make(chan watch.Activity[storage.Observation], 1)
	cancel := v.Subscribe(func(a watch.Activity[storage.Observation]) {
		if a.State == watch.Pending {
			return
		}
		select {
		case ch <- a:
		default:
		}
	})
	defer cancel()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case a := <-ch:
		if a.State == watch.Failed {
			return nil, a.Err
		}
		if a.Value == nil {
			return nil, nil
		}
		return a.Value.Dtab, nil
	}
}

func nodeDentry(d *dtab.Dentry) string {
	if d == nil {
		return nopDentry
	}
	return d.String()
}

// mkDelegateTree flattens a delegation as Linkerd does: alt and union
// children in pre-order; the child of a delegate or transformation node is
// numbered after its own subtree.
func mkDelegateTree(n naming.DelegateNode, dentry string, next int32) (DelegateNode, map[int32]DelegateNode, int32) {
	out := DelegateNode{Path: fromPath(n.Path), Dentry: dentry}
	nodes := map[int32]DelegateNode{}
	switch n.Kind {
	case naming.DelegateException:
		out.Contents = DelegateContents{Kind: DelegateError, Error: n.Message}
	case naming.DelegateEmpty:
		out.Contents = DelegateContents{Kind: DelegateEmpty}
	case naming.DelegateFail:
		out.Contents = DelegateContents{Kind: DelegateFail}
	case naming.DelegateDelegated, naming.DelegateTransformation:
		if n.Child == nil {
			out.Contents = DelegateContents{Kind: DelegateNeg}
			break
		}
		child, sub, after := mkDelegateTree(*n.Child, nodeDentry(n.Child.Dentry), next)
		maps.Copy(nodes, sub)
		nodes[after] = child
		if n.Kind == naming.DelegateDelegated {
			out.Contents = DelegateContents{Kind: DelegateDelegate, Delegate: after}
		} else {
			var v BoundName
			if n.Bound != nil {
				v.ID = fromPath(n.Bound.ID)
			}
			v.Residual = [][]byte{}
			out.Dentry = n.Name
			out.Contents = DelegateContents{Kind: DelegateTransformation, Transformation: Transformation{Value: v, Tree: after}}
		}
		next = after + 1
	case naming.DelegateLeaf:
		if n.Bound == nil {
			out.Contents = DelegateContents{Kind: DelegateNeg}
			break
		}
		out.Contents = DelegateContents{Kind: DelegateBoundLeaf, BoundLeaf: BoundName{ID: fromPath(n.Bound.ID), Residual: fromPath(n.Bound.Residual)}}
	case naming.DelegateAlt:
		out.Contents = DelegateContents{Kind: DelegateAlt, Alt: []int32{}}
		for _, c := range n.Alts {
			id := next
			node, sub, after := mkDelegateTree(c, nodeDentry(c.Dentry), id+1)
			maps.Copy(nodes, sub)
			nodes[id] = node
			out.Contents.Alt = append(out.Contents.Alt, id)
			next = after
		}
	case naming.DelegateUnion:
		out.Contents = DelegateContents{Kind: DelegateWeighted, Weighted: []WeightedNodeID{}}
		for _, b := range n.Branches {
			id := next
			node, sub, after := mkDelegateTree(b.Tree, nodeDentry(b.Tree.Dentry), id+1)
			maps.Copy(nodes, sub)
			nodes[id] = node
			out.Contents.Weighted = append(out.Contents.Weighted, WeightedNodeID{Weight: b.Weight, ID: id})
			next = after
		}
	default:
		out.Contents = DelegateContents{Kind: DelegateNeg}
	}
	return out, nodes, next
}

// ---- client ----

// Explain implements naming.Explainer by asking namerd's delegate method,
// so a router's admin delegator works when the router follows namerd. The
// address sets of the bound leaves are fetched once each.
func (in *Interpreter) Explain(ctx context.Context, d dtab.Dtab, path dtab.Path) (naming.DelegateNode, error) {
	tpath := fromPath(path)
	req := &DelegateReq{Dtab: d.String(), ClientID: in.cid, Delegation: Delegation{
		Stamp: []byte{},
		Ns:    in.o.Namespace,
		Tree:  DelegateTree{Root: DelegateNode{Path: tpath, Dentry: nopDentry, Contents: DelegateContents{Kind: DelegatePathLeaf, PathLeaf: tpath}}},
	}}
	var res Delegation
	var failure DelegationFailure
	if err := in.cli.call(ctx, MethodDelegate, req, &res, &failure); err != nil {
		var df *DelegationFailure
		if errors.As(err, &df) {
			return naming.DelegateNode{}, fmt.Errorf("namerd: %s", df.Reason)
		}
		return naming.DelegateNode{}, err
	}
	return in.delegateNode(ctx, res.Tree, res.Tree.Root, 0)
}

func (in *Interpreter) delegateNode(ctx context.Context, t DelegateTree, n DelegateNode, depth int) (naming.DelegateNode, error) {
	if depth > maxTreeDepth {
		return naming.DelegateNode{}, errors.New("namerd sent a delegation nested too deeply (or cyclic)")
	}
	child := func(id int32) (naming.DelegateNode, error) {
		c, ok := t.Nodes[id]
		if !ok {
			return naming.DelegateNode{}, fmt.Errorf("namerd sent a delegation with unknown node id %d", id)
		}
		return in.delegateNode(ctx, t, c, depth+1)
	}
	out := naming.DelegateNode{Path: toPath(n.Path)}
	if n.Contents.Kind != DelegateTransformation && n.Dentry != nopDentry && n.Dentry != "" {
		de, err := dtab.ParseDentry(n.Dentry)
		if err != nil {
			return out, fmt.Errorf("namerd sent a bad dentry %q: %w", n.Dentry, err)
		}
		out.Dentry = &de
	}
	c := n.Contents
	switch c.Kind {
	case DelegateError:
		out.Kind, out.Message = naming.DelegateException, c.Error
	case DelegateEmpty:
		out.Kind = naming.DelegateEmpty
	case DelegateFail:
		out.Kind = naming.DelegateFail
	case DelegateNeg:
		out.Kind = naming.DelegateNeg
	case DelegateDelegate, DelegateTransformation:
		id := c.Delegate
		out.Kind = naming.DelegateDelegated
		if c.Kind == DelegateTransformation {
			id, out.Kind, out.Name = c.Transformation.Tree, naming.DelegateTransformation, n.Dentry
			out.Bound = &naming.Bound{ID: toPath(c.Transformation.Value.ID), Residual: toPath(c.Transformation.Value.Residual)}
		}
		ch, err := child(id)
		if err != nil {
			return out, err
		}
		out.Child = &ch
	case DelegateBoundLeaf:
		out.Kind = naming.DelegateLeaf
		id := toPath(c.BoundLeaf.ID)
		out.Addr = in.addrOnce(ctx, id)
		out.Bound = &naming.Bound{ID: id, Residual: toPath(c.BoundLeaf.Residual), Addr: watch.Const[naming.Addr]{V: out.Addr}}
	case DelegateAlt:
		out.Kind = naming.DelegateAlt
		for _, id := range c.Alt {
			ch, err := child(id)
			if err != nil {
				return out, err
			}
			out.Alts = append(out.Alts, ch)
		}
	case DelegateWeighted:
		out.Kind = naming.DelegateUnion
		for _, w := range c.Weighted {
			ch, err := child(w.ID)
			if err != nil {
				return out, err
			}
			out.Branches = append(out.Branches, naming.DelegateBranch{Weight: w.Weight, Tree: ch})
		}
	default:
		return out, fmt.Errorf("namerd sent a delegation node of kind %d", c.Kind)
	}
	return out, nil
}

// addrOnce asks namerd for an id's current address set.
func (in *Interpreter) addrOnce(ctx context.Context, id dtab.Path) naming.Addr {
	var res Addr
	var failure AddrFailure
	err := in.cli.call(ctx, MethodAddr, &AddrReq{Name: NameRef{Stamp: []byte{}, Name: fromPath(id), Ns: in.o.Namespace}, ClientID: in.cid}, &res, &failure)
	if err != nil {
		return naming.Addr{State: naming.AddrFailed, Err: err}
	}
	return namingAddr(res)
}

var _ naming.Explainer = (*Interpreter)(nil)
