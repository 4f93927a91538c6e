package remote

import (
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Trees turns the bound trees namerd sends for one bind watch, in
// whatever wire form, into the router's bound trees. A router keys its
// clients and balancers by *naming.Bound, so a leaf that namerd sends
// again (the same id and residual) must come back as the same pointer, or
// every answer would rebuild them; a leaf that namerd no longer sends is
// forgotten, so that its address watch can stop once routers let go.
type Trees struct {
	addr         func(id dtab.Path) watch.Value[naming.Addr]
	transformers []naming.Transformer
	leaves       map[string]*naming.Bound // of the last tree, by id + "\x00" + residual
}

// NewTrees returns the Trees of one bind watch. A new leaf's addresses
// are addr(id), which should be one watch shared by every leaf with that
// id; transformers rewrite every tree, in order (config.md §4.7).
func NewTrees(addr func(id dtab.Path) watch.Value[naming.Addr], transformers []naming.Transformer) *Trees {
	return &Trees{addr: addr, transformers: transformers, leaves: map[string]*naming.Bound{}}
}

// Leaf returns the Bound of a leaf of the tree being converted.
type Leaf func(id, residual dtab.Path) *naming.Bound

// Convert converts one tree from namerd: convert walks it and calls leaf
// for each of its leaves. When it succeeds, the leaves of earlier trees
// that this one lacks are forgotten and the transformers applied; a
// failed conversion forgets nothing.
func (ts *Trees) Convert(convert func(leaf Leaf) (naming.BoundTree, error)) (naming.BoundTree, error) {
	seen := map[string]bool{}
	tree, err := convert(func(id, residual dtab.Path) *naming.Bound {
		k := id.String() + "\x00" + residual.String()
		seen[k] = true
		b := ts.leaves[k]
		if b == nil {
			b = &naming.Bound{ID: id, Residual: residual, Addr: ts.addr(id)}
			ts.leaves[k] = b
		}
		return b
	})
	if err != nil {
		return tree, err
	}
	for k := range ts.leaves {
		if !seen[k] {
			delete(ts.leaves, k)
		}
	}
	for _, t := range ts.transformers {
		tree = t.Transform(tree)
	}
	return tree, nil
}
