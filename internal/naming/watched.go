package naming

import (
	"sync"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// NameState is what a namer that watches names with a loop (a DNS poll, a
// Consul blocking query) knows about one of them.
type NameState uint8

// The states of a watched name.
const (
	NamePending NameState = iota // not resolved yet
	NameNeg                      // does not exist
	NameBound                    // exists; its address set holds the endpoints
	NameFailed                   // never resolved successfully; Err says why
)

// NameStatus is a watched name's state, published when it changes.
type NameStatus struct {
	State NameState
	Err   error // with NameFailed
}

// Holder is a namer's shared entry for one watched name. Hold counts a
// watcher (the first one starts the name's loop, see SharedLoop) and
// Unhold undoes it (the last one stops the loop).
type Holder interface {
	Hold()
	Unhold()
}

// WatchedLookup is the answer of one lookup of a watched name: its status
// as a tree (Neg, the bound leaf b, a failure, or pending). Subscribing
// holds the entry, so the name stays watched while anyone listens.
func WatchedLookup(h Holder, status watch.Value[NameStatus], b *Bound) Lookup {
	return &watchedLookup{h: h, status: status, bound: b}
}

type watchedLookup struct {
	h      Holder
	status watch.Value[NameStatus]
	bound  *Bound
}

func (l *watchedLookup) tree(st NameStatus) watch.Activity[dtab.Tree[Name]] {
	switch st.State {
	case NameNeg:
		return watch.OkActivity(dtab.NegTree[Name]())
	case NameBound:
		return watch.OkActivity(dtab.LeafTree(Name{Bound: l.bound}))
	case NameFailed:
		return watch.FailedActivity[dtab.Tree[Name]](st.Err)
	}
	return watch.PendingActivity[dtab.Tree[Name]]()
}

// Get implements watch.Value: the last known answer (pending until the
// name has been resolved while watched).
func (l *watchedLookup) Get() watch.Activity[dtab.Tree[Name]] { return l.tree(l.status.Get()) }

// Subscribe implements watch.Value.
func (l *watchedLookup) Subscribe(f func(watch.Activity[dtab.Tree[Name]])) func() {
	l.h.Hold()
	return unholdWith(l.h, l.status.Subscribe(func(st NameStatus) { f(l.tree(st)) }))
}

// WatchedAddr is a watched name's address set; subscribing holds the
// entry.
func WatchedAddr(h Holder, addr watch.Value[Addr]) watch.Value[Addr] {
	return watchedAddr{h: h, addr: addr}
}

type watchedAddr struct {
	h    Holder
	addr watch.Value[Addr]
}

func (a watchedAddr) Get() Addr { return a.addr.Get() }

func (a watchedAddr) Subscribe(f func(Addr)) func() {
	a.h.Hold()
	return unholdWith(a.h, a.addr.Subscribe(f))
}

// unholdWith returns a subscription's cancellation that also releases the
// hold taken before subscribing, once however often it is called.
func unholdWith(h Holder, cancel func()) func() {
	var once sync.Once
	return func() { once.Do(func() { cancel(); h.Unhold() }) }
}
