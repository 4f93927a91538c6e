// Package watch holds values that change over time and tell their
// subscribers: Var (a settable cell) and Activity (a Var's value that may be
// pending, ok or failed). It is Finagle's Var/Activity in Go, standard library
// only. Every subscription returns a cancel function; after cancel returns,
// the callback is never called again.
package watch

import "sync"

// Value is anything that has a current value and tells subscribers of
// changes. *Var implements it.
type Value[T any] interface {
	// Get returns the current value.
	Get() T
	// Subscribe calls f with the current value, then with every later value,
	// one call at a time and in order. f must not block for long and must not
	// Set the Value it is subscribed to. cancel stops the calls; once it has
	// returned, f is not running and will not run again.
	Subscribe(f func(T)) (cancel func())
}

// Var is a concurrency-safe cell whose changes are pushed to subscribers.
type Var[T any] struct {
	notify sync.Mutex // serialises notifications and subscription changes
	mu     sync.RWMutex
	v      T
	next   uint64
	subs   map[uint64]*sub[T]
}

type sub[T any] struct {
	f func(T)
}

// NewVar returns a Var holding v.
func NewVar[T any](v T) *Var[T] {
	return &Var[T]{v: v, subs: map[uint64]*sub[T]{}}
}

// Get returns the current value.
func (x *Var[T]) Get() T {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.v
}

// Set stores v and calls every subscriber with it before returning.
func (x *Var[T]) Set(v T) {
	x.notify.Lock()
	defer x.notify.Unlock()
	x.mu.Lock()
	x.v = v
	subs := make([]*sub[T], 0, len(x.subs))
	for _, s := range x.subs {
		subs = append(subs, s)
	}
	x.mu.Unlock()
	for _, s := range subs {
		s.f(v)
	}
}

// Update applies f to the current value and stores the result, atomically
// with respect to other Set and Update calls.
func (x *Var[T]) Update(f func(T) T) {
	x.notify.Lock()
	x.mu.Lock()
	x.v = f(x.v)
	v := x.v
	subs := make([]*sub[T], 0, len(x.subs))
	for _, s := range x.subs {
		subs = append(subs, s)
	}
	x.mu.Unlock()
	defer x.notify.Unlock()
	for _, s := range subs {
		s.f(v)
	}
}

// Subscribe implements Value.
func (x *Var[T]) Subscribe(f func(T)) (cancel func()) {
	x.notify.Lock()
	x.mu.Lock()
	id := x.next
	x.next++
	x.subs[id] = &sub[T]{f: f}
	v := x.v
	x.mu.Unlock()
	f(v)
	x.notify.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			x.notify.Lock()
			x.mu.Lock()
			delete(x.subs, id)
			x.mu.Unlock()
			x.notify.Unlock()
		})
	}
}

// Subscribers returns the number of live subscriptions (for leak tests).
func (x *Var[T]) Subscribers() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.subs)
}

// Const is a Value that never changes.
type Const[T any] struct{ V T }

// Get implements Value.
func (c Const[T]) Get() T { return c.V }

// Subscribe implements Value: f is called once, with the constant.
func (c Const[T]) Subscribe(f func(T)) func() { f(c.V); return func() {} }

var (
	_ Value[int] = (*Var[int])(nil)
	_ Value[int] = Const[int]{}
)
