package naming

import (
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Lookup asks the namer for path and applies the namer's transformers to
// each answer, as Linkerd's NameTreeTransformer wraps a namer: only an
// answer whose leaves are all bound names is transformed (together with
// Neg, Fail and Empty branches); an answer with a path still to delegate
// passes through untouched, and the names it leads to are transformed
// when the namer that binds them has transformers of its own.
func (m MountedNamer) Lookup(path dtab.Path) Lookup {
	l := m.Namer.Lookup(path)
	if len(m.Transformers) == 0 || l == nil {
		return l
	}
	return transformedLookup{l: l, ts: m.Transformers}
}

var _ Namer = MountedNamer{}

// transformedLookup is a namer's changing answer seen through
// transformers. It holds no state: each value is transformed as it is
// read or pushed, so it needs no cancellation of its own.
type transformedLookup struct {
	l  Lookup
	ts []Transformer
}

func (t transformedLookup) Get() watch.Activity[dtab.Tree[Name]] { return t.apply(t.l.Get()) }

func (t transformedLookup) Subscribe(f func(watch.Activity[dtab.Tree[Name]])) func() {
	return t.l.Subscribe(func(a watch.Activity[dtab.Tree[Name]]) { f(t.apply(a)) })
}

func (t transformedLookup) apply(a watch.Activity[dtab.Tree[Name]]) watch.Activity[dtab.Tree[Name]] {
	if a.State != watch.Ok || !allBound(a.Value) {
		return a
	}
	bt := dtab.Map(a.Value, func(n Name) *Bound { return n.Bound })
	for _, x := range t.ts {
		bt = x.Transform(bt)
	}
	a.Value = dtab.Map(bt, func(b *Bound) Name { return Name{Bound: b} })
	return a
}

// allBound reports whether every leaf of t is a bound name.
func allBound(t dtab.Tree[Name]) bool {
	switch t.Kind {
	case dtab.Leaf:
		return t.Value.Bound != nil
	case dtab.Alt:
		for _, s := range t.Alts {
			if !allBound(s) {
				return false
			}
		}
	case dtab.Union:
		for _, b := range t.Branches {
			if !allBound(b.Tree) {
				return false
			}
		}
	}
	return true
}
