package thrift

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// stamper issues stamps unique to this process: an 8-byte big-endian
// counter starting at the smallest int64, as Linkerd's namerd does.
type stamper struct{ n atomic.Int64 }

func newStamper() *stamper {
	s := &stamper{}
	s.n.Store(math.MinInt64)
	return s
}

func (s *stamper) next() []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(s.n.Add(1)-1))
}

// observer keeps the latest state of one watched thing (a binding, an
// address set, a dtab) with the stamp it was given, and lets requests wait
// for a state newer than the one they hold.
type observer[T any] struct {
	stamps *stamper
	equal  func(a, b T) bool

	mu       sync.Mutex
	have     bool
	stamp    []byte
	val      T
	err      error
	changed  chan struct{} // closed and replaced on every update
	waiters  int
	lastUsed time.Time
	cancel   context.CancelFunc
}

func newObserver[T any](s *stamper, equal func(a, b T) bool, cancel context.CancelFunc) *observer[T] {
	return &observer[T]{stamps: s, equal: equal, changed: make(chan struct{}), lastUsed: time.Now(), cancel: cancel}
}

// update records a new state (a value, or an error when err != nil); an
// unchanged state keeps its stamp.
func (o *observer[T]) update(v T, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.have {
		if err == nil && o.err == nil && o.equal(o.val, v) {
			return
		}
		if err != nil && o.err != nil && err.Error() == o.err.Error() {
			return
		}
	}
	o.have, o.val, o.err, o.stamp = true, v, err, o.stamps.next()
	close(o.changed)
	o.changed = make(chan struct{})
}

// wait returns the current state if its stamp differs from stamp (the
// empty stamp never matches), otherwise waits for the next one. It fails
// only with ctx's error.
func (o *observer[T]) wait(ctx context.Context, stamp []byte) (newStamp []byte, v T, stateErr, ctxErr error) {
	o.mu.Lock()
	o.waiters++
	o.lastUsed = time.Now()
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		o.waiters--
		o.lastUsed = time.Now()
		o.mu.Unlock()
	}()
	for {
		o.mu.Lock()
		if o.have && !bytes.Equal(stamp, o.stamp) {
			s, v, err := o.stamp, o.val, o.err
			o.mu.Unlock()
			return s, v, err, nil
		}
		ch := o.changed
		o.mu.Unlock()
		select {
		case <-ctx.Done():
			var zero T
			return nil, zero, nil, ctx.Err()
		case <-ch:
		}
	}
}

// idle reports whether nobody waits and nobody has for ttl.
func (o *observer[T]) idleSince() (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastUsed, o.waiters == 0
}

// cache holds observers by key, evicting inactive ones (nobody waiting)
// after ttl, and the oldest inactive ones beyond maxInactive.
type cache[K comparable, T any] struct {
	mu          sync.Mutex
	m           map[K]*observer[T]
	ttl         time.Duration
	maxInactive int
}

func newCache[K comparable, T any](ttl time.Duration, maxInactive int) *cache[K, T] {
	return &cache[K, T]{m: map[K]*observer[T]{}, ttl: ttl, maxInactive: maxInactive}
}

// get returns the observer of k, starting one with start when absent.
func (c *cache[K, T]) get(k K, start func() *observer[T]) *observer[T] {
	c.mu.Lock()
	o := c.m[k]
	if o == nil {
		o = start()
		c.m[k] = o
	}
	o.mu.Lock()
	o.lastUsed = time.Now()
	o.mu.Unlock()
	c.mu.Unlock()
	return o
}

func (c *cache[K, T]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// sweep evicts per the policy; now is the current time.
func (c *cache[K, T]) sweep(now time.Time) {
	type idle struct {
		k    K
		last time.Time
	}
	c.mu.Lock()
	var inactive []idle
	for k, o := range c.m {
		if last, ok := o.idleSince(); ok {
			if now.Sub(last) >= c.ttl {
				o.cancel()
				delete(c.m, k)
				continue
			}
			inactive = append(inactive, idle{k, last})
		}
	}
	for len(inactive) > c.maxInactive {
		oldest := 0
		for i := range inactive {
			if inactive[i].last.Before(inactive[oldest].last) {
				oldest = i
			}
		}
		c.m[inactive[oldest].k].cancel()
		delete(c.m, inactive[oldest].k)
		inactive = append(inactive[:oldest], inactive[oldest+1:]...)
	}
	c.mu.Unlock()
}

func (c *cache[K, T]) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, o := range c.m {
		o.cancel()
		delete(c.m, k)
	}
}
