package naming

import (
	"errors"
	"fmt"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// MaxDepth is the default limit of lookups along one delegation chain
// (spec/dtab.md §7.5), Finagle's default.
const MaxDepth = 100

// ErrMaxDepth is the error a binding fails with when a delegation chain
// exceeds the depth limit. Test for it with errors.Is.
var ErrMaxDepth = errors.New("max recursion level reached")

// maxDepthError carries Linkerd's message for a given limit while matching
// ErrMaxDepth.
type maxDepthError struct{ limit int }

func (e maxDepthError) Error() string {
	return fmt.Sprintf("Max recursion level: %d reached in Namer lookup", e.limit)
}

func (e maxDepthError) Is(target error) bool { return target == ErrMaxDepth }

// UnknownNamerError is the error of a lookup under /$/<class> when no
// system namer is registered under that class name (spec/dtab.md §7.4).
type UnknownNamerError struct {
	Class string
	Path  dtab.Path
}

func (e *UnknownNamerError) Error() string {
	return "Unknown namer: " + e.Class + " for path: " + e.Path.String()
}

// ErrCannotExplain is returned by Delegate when the interpreter does not
// implement Explainer (the delegator answers 501 then).
var ErrCannotExplain = errors.New("name interpreter cannot show delegations")

// ErrNoBound is returned by Pick when the request cannot be routed: the
// tree (or the union branch chosen) is negative, failed or empty.
var ErrNoBound = errors.New("no hosts are available")

// DefaultBindBudget bounds the work of one binding or explanation: every
// lookup costs 1 plus one unit per 8 dentries scanned plus the size of the
// tree it produces (nodes, and leaf path elements). A dtab such as
// "/ => /a & /b" makes binding exponential (each lookup doubles the tree
// until the depth limit); Linkerd spins on it, we fail it with
// ErrBindTooComplex. Real dtabs need a few hundred units; the depth-limit
// chain of 100 lookups on long paths needs about 10^4.
const DefaultBindBudget = 200_000

// ErrBindTooComplex is the error of a binding or explanation that exceeds
// its work budget.
var ErrBindTooComplex = errors.New("binding is too complex: work budget exceeded")
