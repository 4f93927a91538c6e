// Package follow holds what namerd's interfaces (Thrift, gRPC mesh) share
// to serve watches: a coalescing wake-up, a slot for the latest value of a
// subscription, the loop that follows a name's binding through a
// namespace's dtab as the dtab changes, and the one that follows the
// addresses of a bound id (after naming.StripTransformerPrefix).
package follow

import (
	"context"
	"errors"
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

// Addresses calls emit with every settled state (not pending) of the
// addresses of bound id, until ctx ends (nil) or emit returns an error
// (that error). The id is bound with no dtab, through the namers and the
// /$/ system namers alone, as Linkerd's interfaces resolve ids: when it
// binds to one leaf, that leaf's address set is followed; any other
// binding settles the addresses itself (empty: bound to no address; neg;
// failed, saying why). A binding that moves to another leaf moves the
// watch with it.
func Addresses(ctx context.Context, interp naming.Interpreter, id dtab.Path, emit func(naming.Addr) error) error {
	sig := NewSignal()
	binding, cancelBind := Follow(interp.Bind(nil, id), sig)
	defer cancelBind()
	var (
		bindGen, addrGen uint64
		leaf             *naming.Bound
		addr             *Slot[naming.Addr]
		cancelAddr       = func() {}
	)
	defer func() { cancelAddr() }()
	followLeaf := func(b *naming.Bound) {
		if b == leaf {
			return
		}
		cancelAddr()
		leaf, addr, addrGen, cancelAddr = b, nil, 0, func() {}
		if b != nil && b.Addr != nil {
			addr, cancelAddr = Follow(b.Addr, sig)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sig:
		}
		if a, gen := binding.Get(); gen != bindGen {
			bindGen = gen
			var settled *naming.Addr
			switch a.State {
			case watch.Failed:
				followLeaf(nil)
				settled = &naming.Addr{State: naming.AddrFailed, Err: a.Err}
			case watch.Ok:
				t := a.Value
				switch {
				case t.Kind == dtab.Leaf && t.Value != nil:
					followLeaf(t.Value)
				case t.Kind == dtab.Empty:
					followLeaf(nil)
					settled = &naming.Addr{State: naming.AddrBound}
				case t.Kind == dtab.Fail:
					followLeaf(nil)
					settled = &naming.Addr{State: naming.AddrFailed, Err: errors.New("name tree failed")}
				case t.Kind == dtab.Alt || t.Kind == dtab.Union:
					followLeaf(nil)
					settled = &naming.Addr{State: naming.AddrFailed, Err: fmt.Errorf("%s is not a concrete bound id", id)}
				default:
					followLeaf(nil)
					settled = &naming.Addr{State: naming.AddrNeg}
				}
			}
			if settled != nil {
				if err := emit(*settled); err != nil {
					return err
				}
			}
		}
		if addr == nil {
			continue
		}
		a, gen := addr.Get()
		if gen == addrGen {
			continue
		}
		addrGen = gen
		if a.State == naming.AddrPending {
			continue
		}
		if err := emit(a); err != nil {
			return err
		}
	}
}
