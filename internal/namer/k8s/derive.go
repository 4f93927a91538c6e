package k8s

import (
	"runtime"
	"sync"
	"weak"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// derived is a watch.Value computed from two others: f(a, b). Subscribers
// see one recomputation per change of either input, in order.
type derived[A, B, C any] struct {
	a watch.Value[A]
	b watch.Value[B]
	f func(A, B) C
}

func (d derived[A, B, C]) Get() C { return d.f(d.a.Get(), d.b.Get()) }

func (d derived[A, B, C]) Subscribe(fn func(C)) func() {
	var (
		mu         sync.Mutex
		av         A
		bv         B
		haveA      bool
		haveB      bool
		cancelled  bool
		cancelA    func()
		cancelB    func()
		cancelOnce sync.Once
	)
	publish := func() {
		if haveA && haveB && !cancelled {
			fn(d.f(av, bv))
		}
	}
	// The first callbacks arrive synchronously inside Subscribe; the
	// initial value is published once both are known.
	cancelA = d.a.Subscribe(func(v A) {
		mu.Lock()
		defer mu.Unlock()
		av, haveA = v, true
		publish()
	})
	cancelB = d.b.Subscribe(func(v B) {
		mu.Lock()
		defer mu.Unlock()
		bv, haveB = v, true
		publish()
	})
	return func() {
		cancelOnce.Do(func() {
			cancelA()
			cancelB()
			mu.Lock()
			cancelled = true
			mu.Unlock()
		})
	}
}

// mapped is a watch.Value computed from another: f(v).
type mapped[A, C any] struct {
	v watch.Value[A]
	f func(A) C
}

func (m mapped[A, C]) Get() C { return m.f(m.v.Get()) }

func (m mapped[A, C]) Subscribe(fn func(C)) func() {
	return m.v.Subscribe(func(a A) { fn(m.f(a)) })
}

// boundCache gives each input bound name one transformed bound name, so a
// re-binding that yields the same input yields the identical output (the
// interpreter compares bound names by pointer). Entries go away when their
// input is garbage collected.
type boundCache struct {
	mu sync.Mutex
	m  map[weak.Pointer[naming.Bound]]*naming.Bound
}

func (c *boundCache) get(in *naming.Bound, mk func(*naming.Bound) *naming.Bound) *naming.Bound {
	wp := weak.Make(in)
	c.mu.Lock()
	defer c.mu.Unlock()
	if out, ok := c.m[wp]; ok {
		return out
	}
	if c.m == nil {
		c.m = map[weak.Pointer[naming.Bound]]*naming.Bound{}
	}
	out := mk(in)
	c.m[wp] = out
	runtime.AddCleanup(in, func(wp weak.Pointer[naming.Bound]) {
		c.mu.Lock()
		delete(c.m, wp)
		c.mu.Unlock()
	}, wp)
	return out
}

// size is the number of cached bound names (for tests).
func (c *boundCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// transformTree applies mk to every bound leaf of t through cache.
func transformTree(t naming.BoundTree, cache *boundCache, mk func(*naming.Bound) *naming.Bound) naming.BoundTree {
	return dtab.Map(t, func(b *naming.Bound) *naming.Bound {
		if b == nil {
			return nil
		}
		return cache.get(b, mk)
	})
}
