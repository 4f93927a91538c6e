package naming

import (
	"slices"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// BoundLeaves returns the distinct bound leaves of t, in tree order.
func BoundLeaves(t BoundTree) []*Bound { return appendLeaves(t, nil) }

func appendLeaves(t BoundTree, out []*Bound) []*Bound {
	switch t.Kind {
	case dtab.Leaf:
		if t.Value != nil && !slices.Contains(out, t.Value) {
			out = append(out, t.Value)
		}
	case dtab.Alt:
		for _, c := range t.Alts {
			out = appendLeaves(c, out)
		}
	case dtab.Union:
		for _, b := range t.Branches {
			out = appendLeaves(b.Tree, out)
		}
	}
	return out
}
