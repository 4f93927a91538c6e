// Package remote holds what the routers' namerd interpreters share,
// whatever their wire protocol (io.l5d.namerd.http in namerd/client,
// io.l5d.namerd over ThriftMux in namerd/thrift, io.l5d.mesh over gRPC in
// namerd/mesh), so that they behave alike and each keeps only its
// protocol: their common config keys, finding namerd through a binding,
// keyed watches that run while they have subscribers and keep their last
// known state, the retry of a watch's requests with a jittered, doubling
// backoff, the conversion of namerd's bound trees into stable leaves, and
// their metrics and state pages.
package remote

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Dialer dials one of the current addresses of a binding (a random one,
// so several namerd replicas share the routers). The binding and the
// address sets of its leaves stay watched until life ends, so that they
// are resolved (and kept current) before the first dial.
func Dialer(life context.Context, b naming.Binding) func(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	var mu sync.Mutex
	var cur watch.Activity[naming.BoundTree]
	var addrCancels []func()
	cancel := b.Subscribe(func(a watch.Activity[naming.BoundTree]) {
		var next []func()
		if a.State == watch.Ok {
			for _, l := range naming.BoundLeaves(a.Value) {
				if l.Addr != nil {
					next = append(next, l.Addr.Subscribe(func(naming.Addr) {}))
				}
			}
		}
		mu.Lock()
		cur, addrCancels, next = a, next, addrCancels
		mu.Unlock()
		for _, c := range next {
			c()
		}
	})
	go func() {
		<-life.Done()
		cancel()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range addrCancels {
			c()
		}
	}()
	return func(ctx context.Context) (net.Conn, error) {
		mu.Lock()
		a := cur
		mu.Unlock()
		if a.State != watch.Ok {
			return nil, fmt.Errorf("namerd address not known yet (%v)", a.State)
		}
		bound, err := naming.Pick(a.Value, rand.Float64)
		if err != nil {
			return nil, fmt.Errorf("no namerd address: %w", err)
		}
		if bound.Addr == nil {
			return nil, fmt.Errorf("no namerd address for %s", bound.ID)
		}
		addrs := bound.Addr.Get()
		if addrs.State != naming.AddrBound || len(addrs.Addrs) == 0 {
			return nil, fmt.Errorf("no namerd address for %s", bound.ID)
		}
		return d.DialContext(ctx, "tcp", addrs.Addrs[rand.IntN(len(addrs.Addrs))].HostPort())
	}
}

// Backoff is a jittered, doubling pause between reconnects: each pause is
// drawn from [cur/2, cur], and cur doubles from Base up to Max.
type Backoff struct {
	Base, Max time.Duration
	cur       time.Duration
}

// Reset starts the backoff afresh (namerd answered).
func (b *Backoff) Reset() { b.cur = b.Base }

// Next returns the next pause and doubles the one after it.
func (b *Backoff) Next() time.Duration {
	if b.cur <= 0 {
		b.cur = b.Base
	}
	d := b.cur/2 + time.Duration(rand.Int64N(int64(b.cur/2)+1))
	b.cur = min(2*b.cur, b.Max)
	return d
}

// Wait sleeps for d; false when ctx ended first.
func Wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Watches is a set of keyed watches (one per bind query or bound id, say)
// shared by every subscriber of the same key: a key's watch starts with
// its first subscriber and stops, its context cancelled, with the last.
// While it runs its Var keeps the last state it set, which is what a
// router keeps using while namerd is unreachable.
type Watches[T any] struct {
	ctx     context.Context
	pending T
	mu      sync.Mutex
	m       map[string]*shared[T]
}

type shared[T any] struct {
	v      *watch.Var[T]
	refs   int
	cancel context.CancelFunc
	life   *watchLife // for Snapshot
}

// NewWatches returns an empty set whose watches end when ctx does;
// pending is the value of a key before anything is known.
func NewWatches[T any](ctx context.Context, pending T) *Watches[T] {
	return &Watches[T]{ctx: ctx, pending: pending, m: map[string]*shared[T]{}}
}

// Len returns the number of running watches.
func (ws *Watches[T]) Len() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.m)
}

// Value returns the watch.Value of key. Its first subscriber starts run in
// a goroutine, with a context that ends with the last subscriber and the
// Var to set; its Get is pending while nobody subscribes.
func (ws *Watches[T]) Value(key string, run func(ctx context.Context, v *watch.Var[T])) watch.Value[T] {
	return &value[T]{ws: ws, key: key, run: run}
}

type value[T any] struct {
	ws  *Watches[T]
	key string
	run func(ctx context.Context, v *watch.Var[T])
}

// Get implements watch.Value.
func (x *value[T]) Get() T {
	x.ws.mu.Lock()
	s := x.ws.m[x.key]
	x.ws.mu.Unlock()
	if s == nil {
		return x.ws.pending
	}
	return s.v.Get()
}

// Subscribe implements watch.Value.
func (x *value[T]) Subscribe(f func(T)) func() {
	ws := x.ws
	ws.mu.Lock()
	s := ws.m[x.key]
	if s == nil {
		s = &shared[T]{v: watch.NewVar(ws.pending), life: &watchLife{started: time.Now()}}
		first := true
		s.v.Subscribe(func(T) { // lives as long as the Var
			if first {
				first = false // the current value, not an update
				return
			}
			s.life.recordUpdate()
		})
		ctx, cancel := context.WithCancel(context.WithValue(ws.ctx, statusKey{}, &s.life.status))
		s.cancel = cancel
		ws.m[x.key] = s
		go x.run(ctx, s.v)
	}
	s.refs++
	ws.mu.Unlock()
	cancel := s.v.Subscribe(f)
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			ws.mu.Lock()
			s.refs--
			if s.refs == 0 {
				delete(ws.m, x.key)
				s.cancel()
			}
			ws.mu.Unlock()
		})
	}
}
