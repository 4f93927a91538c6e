package router

import (
	"math/rand/v2"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// pick chooses the bound name of one request (naming.Pick: a weighted
// branch of each union). When the tree routes nowhere it returns nil and
// a reason a person can act on.
func pick(t naming.BoundTree) (*naming.Bound, string) {
	b, err := naming.Pick(t, rand.Float64)
	if err == nil {
		return b, ""
	}
	switch t.Kind {
	case dtab.Fail:
		return nil, "the name resolved to a failure (!)"
	case dtab.Empty:
		return nil, "the name resolved to an empty set ($)"
	case dtab.Neg:
		return nil, "no dtab rule or namer matched the name (~)"
	default:
		return nil, "the chosen branch of the name routes nowhere: " + err.Error()
	}
}
