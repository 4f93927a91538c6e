package naming

import (
	"github.com/linnet-mesh/linnet/internal/dtab"
)

// Pick chooses the bound name one request goes to (spec/dtab.md §8): a
// leaf is itself; a union picks one branch with probability w/Σw over its
// own branches (uniformly when Σw is 0), level by level. Neg, Fail and
// Empty — at the top or as the chosen branch — give ErrNoBound. rnd
// returns numbers in [0, 1) (e.g. rand.Float64). Pick does not allocate.
func Pick(t BoundTree, rnd func() float64) (*Bound, error) {
	for {
		switch t.Kind {
		case dtab.Leaf:
			if t.Value == nil {
				return nil, ErrNoBound
			}
			return t.Value, nil
		case dtab.Union:
			if len(t.Branches) == 0 {
				return nil, ErrNoBound
			}
			t = t.Branches[pickBranch(t.Branches, rnd())].Tree
		case dtab.Alt:
			// Bound trees have no alternations (§7.5); if one was built by
			// hand, route like the first alternative that can take traffic.
			next, ok := firstRoutable(t.Alts)
			if !ok {
				return nil, ErrNoBound
			}
			t = next
		default:
			return nil, ErrNoBound
		}
	}
}

func firstRoutable(ts []BoundTree) (BoundTree, bool) {
	for _, c := range ts {
		switch c.Kind {
		case dtab.Neg:
			continue
		case dtab.Fail:
			return BoundTree{}, false
		}
		return c, true
	}
	return BoundTree{}, false
}

// branchWeight is a branch's weight for traffic: negative or NaN weights
// (never produced by the parser) count as 0.
func branchWeight(w float64) float64 {
	if !(w > 0) {
		return 0
	}
	return w
}

// pickBranch maps r in [0, 1) to a branch index by weight.
func pickBranch[T any](bs []dtab.Weighted[T], r float64) int {
	var sum float64
	for _, b := range bs {
		sum += branchWeight(b.Weight)
	}
	if sum == 0 {
		i := int(r * float64(len(bs)))
		return min(max(i, 0), len(bs)-1)
	}
	target := r * sum
	last := 0
	for i, b := range bs {
		w := branchWeight(b.Weight)
		if w == 0 {
			continue
		}
		last = i
		if target < w {
			return i
		}
		target -= w
	}
	return last // rounding at the top end
}

// Share is the fraction of requests one non-union node of a bound tree
// receives (spec/dtab.md §8).
type Share struct {
	// Kind is Leaf for a bound name, otherwise Empty (or Neg/Fail in trees
	// not produced by binding); requests sent to a non-leaf fail.
	Kind  dtab.Kind
	Bound *Bound
	Share float64
}

// Shares lists, depth first and left to right, every non-union node
// reachable from t with the fraction of requests it receives.
func Shares(t BoundTree) []Share {
	var out []Share
	appendShares(&out, t, 1)
	return out
}

func appendShares(out *[]Share, t BoundTree, f float64) {
	if t.Kind != dtab.Union {
		s := Share{Kind: t.Kind, Share: f}
		if t.Kind == dtab.Leaf {
			s.Bound = t.Value
		}
		*out = append(*out, s)
		return
	}
	var sum float64
	for _, b := range t.Branches {
		sum += branchWeight(b.Weight)
	}
	for _, b := range t.Branches {
		p := 1 / float64(len(t.Branches))
		if sum > 0 {
			p = branchWeight(b.Weight) / sum
		}
		appendShares(out, b.Tree, f*p)
	}
}
