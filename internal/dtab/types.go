package dtab

// Path is a sequence of non-empty byte-string elements. The empty path
// (no elements) prints as "/". Paths are compared element by element,
// byte-exactly.
type Path []string

// PrefixElem is one element of a dentry prefix: either a literal label or
// the wildcard "*" (Any), which matches any one element.
type PrefixElem struct {
	Label string
	Any   bool
}

// Prefix is the left-hand side of a dentry.
type Prefix []PrefixElem

// Kind says what a Tree node is.
type Kind uint8

// Tree node kinds. The zero Kind is Neg.
const (
	Neg   Kind = iota // "~": nothing here, try something else
	Fail              // "!": stop, this name is broken
	Empty             // "$": exists, currently has no endpoints
	Leaf              // a value (a Path before binding, a bound name after)
	Alt               // "|": ordered fail-over
	Union             // "&": weighted load sharing
)

// Tree is a name tree over leaf values of type T. Only the fields that
// belong to Kind are set: Value for Leaf, Alts for Alt, Branches for Union.
type Tree[T any] struct {
	Kind     Kind
	Value    T
	Alts     []Tree[T]
	Branches []Weighted[T]
}

// Weighted is one branch of a Union.
type Weighted[T any] struct {
	Weight float64
	Tree   Tree[T]
}

// NameTree is a name tree whose leaves are unbound paths.
type NameTree = Tree[Path]

// Dentry is one delegation rule: paths matching Prefix are rewritten to Dst
// with the unmatched rest of the path appended to every leaf.
type Dentry struct {
	Prefix Prefix
	Dst    NameTree
}

// Dtab is an ordered list of dentries; later entries have higher priority.
type Dtab []Dentry

// Constructors for the constant trees and leaves.

// NegTree returns the negative tree "~".
func NegTree[T any]() Tree[T] { return Tree[T]{Kind: Neg} }

// FailTree returns the failed tree "!".
func FailTree[T any]() Tree[T] { return Tree[T]{Kind: Fail} }

// EmptyTree returns the empty tree "$".
func EmptyTree[T any]() Tree[T] { return Tree[T]{Kind: Empty} }

// LeafTree returns a leaf holding v.
func LeafTree[T any](v T) Tree[T] { return Tree[T]{Kind: Leaf, Value: v} }

// AltTree returns an alternation of the given trees, in order.
func AltTree[T any](ts ...Tree[T]) Tree[T] { return Tree[T]{Kind: Alt, Alts: ts} }

// UnionTree returns a weighted union of the given branches, in order.
func UnionTree[T any](bs ...Weighted[T]) Tree[T] { return Tree[T]{Kind: Union, Branches: bs} }
