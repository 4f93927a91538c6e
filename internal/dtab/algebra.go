package dtab

// Simplify returns a tree that evaluates like t (spec/dtab.md §6.1);
// Simplify is idempotent and never flattens nested groups.
//
//   - Alt: children are simplified in order; Neg children are dropped; a
//     Fail child is kept and ends the list. No child left is Neg, one is
//     that child.
//   - Union: branch trees are simplified; branches that become Neg or Fail
//     are dropped (so "! & !" is "~"); the others keep their weights. No
//     branch left is Neg, one is that branch's tree (its weight dropped).
//   - Leaf, Neg, Fail, Empty are returned unchanged.
//
// The result may share subtrees and leaf values with t.
func Simplify[T any](t Tree[T]) Tree[T] {
	switch t.Kind {
	case Alt:
		switch len(t.Alts) {
		case 0:
			return Tree[T]{Kind: Neg}
		case 1:
			return Simplify(t.Alts[0])
		}
		var out []Tree[T]
		for _, c := range t.Alts {
			s := Simplify(c)
			if s.Kind == Neg {
				continue
			}
			if out == nil {
				out = make([]Tree[T], 0, len(t.Alts))
			}
			out = append(out, s)
			if s.Kind == Fail {
				break
			}
		}
		switch len(out) {
		case 0:
			return Tree[T]{Kind: Neg}
		case 1:
			return out[0]
		}
		return Tree[T]{Kind: Alt, Alts: out}
	case Union:
		switch len(t.Branches) {
		case 0:
			return Tree[T]{Kind: Neg}
		case 1:
			return Simplify(t.Branches[0].Tree)
		}
		var out []Weighted[T]
		for _, b := range t.Branches {
			s := Simplify(b.Tree)
			if s.Kind == Neg || s.Kind == Fail {
				continue
			}
			if out == nil {
				out = make([]Weighted[T], 0, len(t.Branches))
			}
			out = append(out, Weighted[T]{Weight: b.Weight, Tree: s})
		}
		switch len(out) {
		case 0:
			return Tree[T]{Kind: Neg}
		case 1:
			return out[0].Tree
		}
		return Tree[T]{Kind: Union, Branches: out}
	}
	return t
}

// outcome is the three-valued result of evaluating a subtree: eval does
// not tell Neg from Fail at the top, but an alternation must, since a
// failed alternative stops the fail-over while a negative one does not.
type outcome uint8

const (
	outNeg outcome = iota
	outFail
	outSet
)

// Eval evaluates t (spec/dtab.md §6.2), ignoring weights. ok is false when
// the result is negative (Neg and Fail are not told apart); otherwise
// leaves is the set of leaf values reached, in depth-first order (the
// empty set is a non-nil empty slice; since T need not be comparable,
// a value reached through several branches of a union appears once per
// branch).
//
// Alt yields its first child that is not negative, but a child that fails
// (is Fail, or evaluates like Fail — e.g. "(! | /a)") ends the search
// negatively, which keeps Eval(Simplify(t)) equal to Eval(t). An Empty
// child yields the empty set and so ends the search. Union yields the union
// of its branches that are neither negative nor failed, and is negative
// when none is.
func Eval[T any](t Tree[T]) (leaves []T, ok bool) {
	out := make([]T, 0, 1)
	if eval(t, &out) != outSet {
		return nil, false
	}
	return out, true
}

func eval[T any](t Tree[T], out *[]T) outcome {
	switch t.Kind {
	case Leaf:
		*out = append(*out, t.Value)
		return outSet
	case Empty:
		return outSet
	case Fail:
		return outFail
	case Alt:
		for _, c := range t.Alts {
			mark := len(*out)
			switch eval(c, out) {
			case outSet:
				return outSet
			case outFail:
				*out = (*out)[:mark]
				return outFail
			}
			*out = (*out)[:mark]
		}
		return outNeg
	case Union:
		if len(t.Branches) == 1 {
			return eval(t.Branches[0].Tree, out)
		}
		found := false
		for _, b := range t.Branches {
			mark := len(*out)
			if eval(b.Tree, out) == outSet {
				found = true
			} else {
				*out = (*out)[:mark]
			}
		}
		if found {
			return outSet
		}
		return outNeg
	}
	return outNeg
}

// Map returns a tree of the same shape as t with every leaf value v
// replaced by f(v). Weights and constants are kept.
func Map[T, U any](t Tree[T], f func(T) U) Tree[U] {
	return FlatMap(t, func(v T) Tree[U] { return Tree[U]{Kind: Leaf, Value: f(v)} })
}

// FlatMap returns t with every leaf v replaced by the tree f(v). Weights,
// structure and the constants are kept; nothing is simplified.
func FlatMap[T, U any](t Tree[T], f func(T) Tree[U]) Tree[U] {
	switch t.Kind {
	case Leaf:
		return f(t.Value)
	case Alt:
		alts := make([]Tree[U], len(t.Alts))
		for i, c := range t.Alts {
			alts[i] = FlatMap(c, f)
		}
		return Tree[U]{Kind: Alt, Alts: alts}
	case Union:
		bs := make([]Weighted[U], len(t.Branches))
		for i, b := range t.Branches {
			bs[i] = Weighted[U]{Weight: b.Weight, Tree: FlatMap(b.Tree, f)}
		}
		return Tree[U]{Kind: Union, Branches: bs}
	}
	return Tree[U]{Kind: t.Kind}
}

// TreeEqual reports whether a and b have the same shape, kinds, weights
// (compared with ==) and leaf values (compared with eq). Nothing is
// simplified first: "/a" and "(/a)" are equal, "/a" and "/a | ~" are not.
func TreeEqual[T any](a, b Tree[T], eq func(T, T) bool) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case Leaf:
		return eq(a.Value, b.Value)
	case Alt:
		if len(a.Alts) != len(b.Alts) {
			return false
		}
		for i := range a.Alts {
			if !TreeEqual(a.Alts[i], b.Alts[i], eq) {
				return false
			}
		}
	case Union:
		if len(a.Branches) != len(b.Branches) {
			return false
		}
		for i := range a.Branches {
			if a.Branches[i].Weight != b.Branches[i].Weight ||
				!TreeEqual(a.Branches[i].Tree, b.Branches[i].Tree, eq) {
				return false
			}
		}
	}
	return true
}

// NameTreeEqual reports whether two name trees are equal (TreeEqual with
// Path.Equal on leaves).
func NameTreeEqual(a, b NameTree) bool { return TreeEqual(a, b, Path.Equal) }
