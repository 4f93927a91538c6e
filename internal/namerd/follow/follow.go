// Package follow holds what namerd's interfaces (Thrift, gRPC mesh) share
// to serve watches: a coalescing wake-up, a slot for the latest value of a
// subscription, and the loop that follows a name's binding through a
// namespace's dtab as the dtab changes.
package follow

import (
	"context"
	"fmt"
	"sync"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Signal is a coalescing wake-up.
type Signal chan struct{}

// NewSignal returns a Signal.
func NewSignal() Signal { return make(Signal, 1) }

// Poke wakes the waiter, once however often it is poked before it wakes.
func (s Signal) Poke() {
	select {
	case s <- struct{}{}:
	default:
	}
}

// Slot keeps the latest value a subscription pushed; its generation
// counts pushes.
type Slot[T any] struct {
	mu  sync.Mutex
	v   T
	gen uint64
}

// Set stores v as the latest value.
func (s *Slot[T]) Set(v T) {
	s.mu.Lock()
	s.v = v
	s.gen++
	s.mu.Unlock()
}

// Get returns the latest value and its generation.
func (s *Slot[T]) Get() (T, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v, s.gen
}

// Follow subscribes to v: its values land in the returned slot and poke
// sig. The func cancels the subscription.
func Follow[T any](v watch.Value[T], sig Signal) (*Slot[T], func()) {
	l := &Slot[T]{}
	cancel := v.Subscribe(func(x T) { l.Set(x); sig.Poke() })
	return l, cancel
}

// StoreError is a failed observation of a namespace's dtab.
type StoreError struct {
	Namespace string
	Err       error
}

func (e *StoreError) Error() string { return fmt.Sprintf("dtab namespace %q: %v", e.Namespace, e.Err) }
func (e *StoreError) Unwrap() error { return e.Err }

// Binding calls emit with every settled state (Ok or Failed) of the
// binding of path through namespace ns's dtab followed by extra, until ctx
// ends (nil) or emit returns an error (that error). The name is bound
// again when the namespace's dtab changes version; a failed observation of
// the store is emitted as a Failed activity carrying a *StoreError.
func Binding(ctx context.Context, store storage.Store, interp naming.Interpreter, ns string, extra dtab.Dtab, path dtab.Path, emit func(watch.Activity[naming.BoundTree]) error) error {
	sig := NewSignal()
	obs, cancelObs := Follow(store.Observe(ns), sig)
	defer cancelObs()
	var (
		obsGen, bindGen uint64
		haveDtab        bool
		version         storage.Version
		binding         *Slot[watch.Activity[naming.BoundTree]]
		cancelBind      = func() {}
	)
	defer func() { cancelBind() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sig:
		}
		a, gen := obs.Get()
		if gen != obsGen {
			obsGen = gen
			switch a.State {
			case watch.Failed:
				if err := emit(watch.FailedActivity[naming.BoundTree](&StoreError{Namespace: ns, Err: a.Err})); err != nil {
					return err
				}
				continue
			case watch.Ok:
				var d dtab.Dtab
				var v storage.Version
				if a.Value != nil {
					d, v = a.Value.Dtab, a.Value.Version
				}
				if !haveDtab || !v.Equal(version) {
					haveDtab, version = true, v
					cancelBind()
					binding, cancelBind = Follow(interp.Bind(d.Concat(extra), path), sig)
					bindGen = 0
				}
			}
		}
		if binding == nil {
			continue
		}
		b, gen := binding.Get()
		if gen == bindGen {
			continue
		}
		bindGen = gen
		if b.State == watch.Pending {
			continue
		}
		if err := emit(b); err != nil {
			return err
		}
	}
}
