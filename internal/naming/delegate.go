package naming

import (
	"context"
	"errors"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// DelegateKind says what a DelegateNode is.
type DelegateKind uint8

// Delegation node kinds (spec/dtab.md §10.2).
const (
	DelegateNeg            DelegateKind = iota // nothing here
	DelegateFail                               // "!" or /$/fail
	DelegateEmpty                              // "$" or /$/nil
	DelegateException                          // a lookup failed: Message
	DelegateDelegated                          // one dentry rewrote Path: Child
	DelegateLeaf                               // bound by a namer: Bound, Addr
	DelegateAlt                                // several dentries matched, or "|": Alts
	DelegateUnion                              // "&": Branches
	DelegateTransformation                     // a transformer rewrote Bound into Child
	delegateUnresolved                         // internal: Unresolved still to expand
)

var delegateKindNames = [...]string{"neg", "fail", "empty", "exception", "delegate", "leaf", "alt", "union", "transformation", "unresolved"}

// String returns the kind's JSON type name.
func (k DelegateKind) String() string {
	if int(k) < len(delegateKindNames) {
		return delegateKindNames[k]
	}
	return "unknown"
}

// DelegateNode is one node of a delegation explanation: the path resolved
// there and the dentry that rewrote the parent's path into it (nil at the
// root), plus the kind-specific fields.
type DelegateNode struct {
	Kind   DelegateKind
	Path   dtab.Path
	Dentry *dtab.Dentry
	// Message is the error of an Exception node.
	Message string
	// Child is the node a Delegate or Transformation node leads to.
	Child *DelegateNode
	// Alts are an Alt node's children, in order.
	Alts []DelegateNode
	// Branches are a Union node's weighted children, in order.
	Branches []DelegateBranch
	// Bound is a Leaf's bound name (for a Transformation, the name before
	// transformation); Addr its address set when the tree was explained.
	Bound *Bound
	Addr  Addr
	// Name is a Transformation's transformer name.
	Name string

	unresolved dtab.Path
}

// DelegateBranch is one weighted child of a Union node.
type DelegateBranch struct {
	Weight float64
	Tree   DelegateNode
}

// Explainer is implemented by interpreters that can explain a delegation
// (the admin delegator and namerd's delegate API need one).
type Explainer interface {
	Explain(ctx context.Context, d dtab.Dtab, path dtab.Path) (DelegateNode, error)
}

// Delegate explains how path is delegated through d by interp
// (spec/dtab.md §10). It fails with ErrCannotExplain when interp is not an
// Explainer, with an error matching ErrMaxDepth when delegation exceeds
// the depth limit outside any alternation or union, and with ctx's error
// when ctx ends first (namer answers and address sets are waited for).
func Delegate(ctx context.Context, interp Interpreter, d dtab.Dtab, path dtab.Path) (DelegateNode, error) {
	ex, ok := interp.(Explainer)
	if !ok {
		return DelegateNode{}, ErrCannotExplain
	}
	return ex.Explain(ctx, d, path)
}

// delegateDepthError is the delegator's depth overflow (Linkerd's message).
type delegateDepthError struct{}

func (delegateDepthError) Error() string        { return "Max recursion level reached." }
func (delegateDepthError) Is(target error) bool { return target == ErrMaxDepth }

// Explain implements Explainer (spec/dtab.md §10.2). Unlike binding it
// explores every alternative and reports failed lookups as exception
// nodes.
func (in *DefaultInterpreter) Explain(ctx context.Context, d dtab.Dtab, path dtab.Path) (DelegateNode, error) {
	x := explainer{in: in, ctx: ctx, d: d, budget: in.budget}
	n, err := x.expand(DelegateNode{Kind: delegateUnresolved, unresolved: path}, 0)
	if err != nil {
		return DelegateNode{}, err
	}
	n = tidy(n)
	if len(in.trans) > 0 {
		n = transformLeaves(n, in.trans)
	}
	if err := x.fillAddrs(&n); err != nil {
		return DelegateNode{}, err
	}
	return n, nil
}

type explainer struct {
	in     *DefaultInterpreter
	ctx    context.Context
	d      dtab.Dtab
	budget int // work left (dentries examined plus lookups)
}

func (x *explainer) expand(n DelegateNode, depth int) (DelegateNode, error) {
	if depth > MaxDepth {
		return DelegateNode{}, delegateDepthError{}
	}
	switch n.Kind {
	case delegateUnresolved:
		m, err := x.step(n.Dentry, n.unresolved)
		if err != nil {
			return DelegateNode{}, err
		}
		return x.expand(m, depth+1)
	case DelegateDelegated:
		c, err := x.expand(*n.Child, depth)
		if err != nil {
			return DelegateNode{}, err
		}
		n.Child = &c
		return n, nil
	case DelegateAlt:
		switch len(n.Alts) {
		case 0:
			return DelegateNode{Kind: DelegateNeg, Path: n.Path, Dentry: n.Dentry}, nil
		case 1:
			return x.expand(delegated(n.Path, n.Dentry, n.Alts[0]), depth)
		}
		alts := make([]DelegateNode, len(n.Alts))
		for i, c := range n.Alts {
			e, err := x.expandChild(n, c, depth)
			if err != nil {
				return DelegateNode{}, err
			}
			alts[i] = e
		}
		n.Alts = alts
		return n, nil
	case DelegateUnion:
		switch len(n.Branches) {
		case 0:
			return DelegateNode{Kind: DelegateNeg, Path: n.Path, Dentry: n.Dentry}, nil
		case 1:
			return x.expand(delegated(n.Path, n.Dentry, n.Branches[0].Tree), depth)
		}
		bs := make([]DelegateBranch, len(n.Branches))
		for i, b := range n.Branches {
			e, err := x.expandChild(n, b.Tree, depth)
			if err != nil {
				return DelegateNode{}, err
			}
			bs[i] = DelegateBranch{Weight: b.Weight, Tree: e}
		}
		n.Branches = bs
		return n, nil
	}
	return n, nil
}

// expandChild expands one child of an Alt or Union node; a depth overflow
// becomes an exception node carrying the parent's path and dentry.
func (x *explainer) expandChild(parent, c DelegateNode, depth int) (DelegateNode, error) {
	e, err := x.expand(c, depth)
	var de delegateDepthError
	if errors.As(err, &de) {
		return DelegateNode{Kind: DelegateException, Path: parent.Path, Dentry: parent.Dentry, Message: err.Error()}, nil
	}
	return e, err
}

func delegated(p dtab.Path, d *dtab.Dentry, c DelegateNode) DelegateNode {
	return DelegateNode{Kind: DelegateDelegated, Path: p, Dentry: d, Child: &c}
}

// step explains one lookup of q, which dentry din produced.
func (x *explainer) step(din *dtab.Dentry, q dtab.Path) (DelegateNode, error) {
	if x.budget -= 1 + len(x.d)/8 + len(q); x.budget < 0 {
		return DelegateNode{}, ErrBindTooComplex
	}
	if err := x.ctx.Err(); err != nil {
		return DelegateNode{}, err
	}
	var matches []DelegateNode
	for i := len(x.d) - 1; i >= 0; i-- {
		m := &x.d[i]
		rest, ok := m.Prefix.Match(q)
		if !ok {
			continue
		}
		dst := m.Dst
		if x.budget -= treeCost(dst, func(l dtab.Path) int { return len(l) + len(rest) }); x.budget < 0 {
			return DelegateNode{}, ErrBindTooComplex
		}
		if len(rest) > 0 {
			dst = dtab.Map(dst, func(l dtab.Path) dtab.Path { return l.Concat(rest) })
		}
		matches = append(matches, wrap(q, m, dtab.Map(dst, func(p dtab.Path) Name { return Name{Path: p} })))
	}
	switch len(matches) {
	case 0:
		r, err := x.namerLookup(q)
		if err != nil {
			if x.ctx.Err() != nil {
				return DelegateNode{}, err
			}
			return DelegateNode{Kind: DelegateException, Path: q, Dentry: din, Message: err.Error()}, nil
		}
		if r.Kind == dtab.Neg {
			return DelegateNode{Kind: DelegateNeg, Path: q, Dentry: din}, nil
		}
		if x.budget -= treeCost(r, nameCost); x.budget < 0 {
			return DelegateNode{}, ErrBindTooComplex
		}
		return wrap(q, din, r), nil
	case 1:
		return delegated(q, din, matches[0]), nil
	}
	return DelegateNode{Kind: DelegateAlt, Path: q, Dentry: din, Alts: matches}, nil
}

// namerLookup is the binding's namer lookup (§7.2) with each answer
// waited for until it is no longer pending.
func (x *explainer) namerLookup(q dtab.Path) (dtab.Tree[Name], error) {
	for _, m := range x.in.namers {
		if !q.HasPrefix(m.Prefix) {
			continue
		}
		r, err := awaitLookup(x.ctx, m.Lookup(q[len(m.Prefix):]))
		if err != nil {
			return dtab.Tree[Name]{}, err
		}
		if r.Kind != dtab.Neg {
			return r, nil
		}
	}
	return awaitLookup(x.ctx, x.in.sys.Lookup(q))
}

func awaitLookup(ctx context.Context, l Lookup) (dtab.Tree[Name], error) {
	a, err := await(ctx, l, func(a watch.Activity[dtab.Tree[Name]]) bool { return a.State != watch.Pending })
	if err != nil {
		return dtab.Tree[Name]{}, err
	}
	if a.State == watch.Failed {
		if a.Err == nil {
			return dtab.Tree[Name]{}, errors.New("lookup failed")
		}
		return dtab.Tree[Name]{}, a.Err
	}
	return a.Value, nil
}

// wrap attaches path q and dentry d to a freshly produced tree (§10.2).
func wrap(q dtab.Path, d *dtab.Dentry, t dtab.Tree[Name]) DelegateNode {
	switch t.Kind {
	case dtab.Empty:
		return DelegateNode{Kind: DelegateEmpty, Path: q, Dentry: d}
	case dtab.Fail:
		return DelegateNode{Kind: DelegateFail, Path: q, Dentry: d}
	case dtab.Leaf:
		if t.Value.Bound != nil {
			return DelegateNode{Kind: DelegateLeaf, Path: q, Dentry: d, Bound: t.Value.Bound}
		}
		return DelegateNode{Kind: delegateUnresolved, Path: q, Dentry: d, unresolved: t.Value.Path}
	case dtab.Alt:
		alts := make([]DelegateNode, len(t.Alts))
		for i, c := range t.Alts {
			alts[i] = wrap(q, d, c)
		}
		return DelegateNode{Kind: DelegateAlt, Path: q, Dentry: d, Alts: alts}
	case dtab.Union:
		bs := make([]DelegateBranch, len(t.Branches))
		for i, b := range t.Branches {
			bs[i] = DelegateBranch{Weight: b.Weight, Tree: wrap(q, d, b.Tree)}
		}
		return DelegateNode{Kind: DelegateUnion, Path: q, Dentry: d, Branches: bs}
	}
	return DelegateNode{Kind: DelegateNeg, Dentry: d} // the path is dropped
}

// tidy collapses the explanation as Linkerd's delegator does (§10.2).
func tidy(n DelegateNode) DelegateNode {
	switch n.Kind {
	case DelegateDelegated:
		c := tidy(*n.Child)
		switch c.Kind {
		case DelegateNeg, DelegateFail, DelegateEmpty:
		default:
			if c.Path.Equal(n.Path) {
				c.Dentry = n.Dentry
				return c
			}
		}
		n.Child = &c
		return n
	case DelegateAlt:
		switch len(n.Alts) {
		case 0:
			return DelegateNode{Kind: DelegateNeg, Path: n.Path, Dentry: n.Dentry}
		case 1:
			return tidy(delegated(n.Path, n.Dentry, n.Alts[0]))
		}
		alts := make([]DelegateNode, 0, len(n.Alts))
		for _, c := range n.Alts {
			t := tidy(c)
			if t.Kind == DelegateAlt && t.Path.Equal(n.Path) {
				alts = append(alts, t.Alts...)
				continue
			}
			alts = append(alts, t)
		}
		n.Alts = alts
		return n
	case DelegateUnion:
		switch len(n.Branches) {
		case 0:
			return DelegateNode{Kind: DelegateNeg, Path: n.Path, Dentry: n.Dentry}
		case 1:
			return tidy(delegated(n.Path, n.Dentry, n.Branches[0].Tree))
		}
		bs := make([]DelegateBranch, len(n.Branches))
		for i, b := range n.Branches {
			bs[i] = DelegateBranch{Weight: b.Weight, Tree: tidy(b.Tree)}
		}
		n.Branches = bs
		return n
	}
	return n
}

// fillAddrs records, for every leaf, its address set once it is no longer
// pending.
func (x *explainer) fillAddrs(n *DelegateNode) error {
	switch n.Kind {
	case DelegateLeaf, DelegateTransformation:
		if n.Bound != nil && n.Bound.Addr != nil {
			a, err := AwaitAddr(x.ctx, n.Bound.Addr)
			if err != nil {
				return err
			}
			n.Addr = a
		}
		if n.Child != nil {
			return x.fillAddrs(n.Child)
		}
	case DelegateDelegated:
		return x.fillAddrs(n.Child)
	case DelegateAlt:
		for i := range n.Alts {
			if err := x.fillAddrs(&n.Alts[i]); err != nil {
				return err
			}
		}
	case DelegateUnion:
		for i := range n.Branches {
			if err := x.fillAddrs(&n.Branches[i].Tree); err != nil {
				return err
			}
		}
	}
	return nil
}

// AwaitAddr waits until v is no longer pending and returns it, or returns
// ctx's error. It keeps v subscribed while waiting, so lazily resolved
// address sets (DNS) start resolving.
func AwaitAddr(ctx context.Context, v watch.Value[Addr]) (Addr, error) {
	return await(ctx, v, func(a Addr) bool { return a.State != AddrPending })
}

// await subscribes to v until ready accepts a value.
func await[T any](ctx context.Context, v watch.Value[T], ready func(T) bool) (T, error) {
	ch := make(chan T, 1)
	cancel := v.Subscribe(func(t T) {
		if ready(t) {
			select {
			case ch <- t:
			default:
			}
		}
	})
	defer cancel()
	select {
	case t := <-ch:
		return t, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// transformLeaves wraps every leaf of n in the Transformation nodes of
// the interpreter's transformers, in the order they apply (the last one
// outermost), each with the bound name it produced, as Linkerd's
// delegator shows them (spec/dtab.md §10.2, §10.4).
func transformLeaves(n DelegateNode, ts []Transformer) DelegateNode {
	switch n.Kind {
	case DelegateLeaf:
		for _, t := range ts {
			if n.Bound == nil {
				break
			}
			out := t.Transform(dtab.LeafTree(n.Bound))
			if out.Kind != dtab.Leaf || out.Value == nil {
				break
			}
			leaf := n
			n = DelegateNode{Kind: DelegateTransformation, Path: leaf.Path, Name: transformerName(out.Value.ID), Bound: out.Value, Child: &leaf}
		}
	case DelegateDelegated:
		c := transformLeaves(*n.Child, ts)
		n.Child = &c
	case DelegateAlt:
		alts := make([]DelegateNode, len(n.Alts))
		for i := range n.Alts {
			alts[i] = transformLeaves(n.Alts[i], ts)
		}
		n.Alts = alts
	case DelegateUnion:
		bs := make([]DelegateBranch, len(n.Branches))
		for i, b := range n.Branches {
			bs[i] = DelegateBranch{Weight: b.Weight, Tree: transformLeaves(b.Tree, ts)}
		}
		n.Branches = bs
	}
	return n
}

// transformerName is the kind a transformed id is marked with
// (/%/io.l5d.port/4141/... → io.l5d.port).
func transformerName(id dtab.Path) string {
	if len(id) >= 2 && id[0] == "%" {
		return id[1]
	}
	return "transformer"
}
