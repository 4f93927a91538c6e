package naming

import (
	"context"
	"sync"
)

// Loops is the lifecycle of a namer's background loops (a poll or a
// watch per name, shared by every lookup of the name): they start with a
// name's first holder (SharedLoop.Acquire), stop with its last
// (SharedLoop.Release), and all stop when the namer closes.
type Loops struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex // guards closed and wg.Add against Close
	closed bool
}

// Init makes the loops children of ctx (nil: none); call it once, before
// any Acquire.
func (l *Loops) Init(ctx context.Context) {
	if ctx == nil {
		ctx = context.Background()
	}
	l.ctx, l.cancel = context.WithCancel(ctx)
}

// Close stops every loop and waits for them to end; later Acquires start
// nothing.
func (l *Loops) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

// SharedLoop counts the holders of one shared entry and runs its loop
// while there are any.
type SharedLoop struct {
	mu   sync.Mutex
	subs int
	stop context.CancelFunc
}

// Acquire counts a holder. The first one starts run in its own goroutine
// (unless the Loops are closed) and Acquire reports true: the caller then
// makes the entry the one later lookups share.
func (s *SharedLoop) Acquire(l *Loops, run func(ctx context.Context)) (first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs++
	if s.subs != 1 {
		return false
	}
	l.mu.Lock()
	if !l.closed {
		ctx, cancel := context.WithCancel(l.ctx)
		s.stop = cancel
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			run(ctx)
		}()
	}
	l.mu.Unlock()
	return true
}

// Release undoes Acquire. The last holder stops the loop without waiting
// for it (Release may run inside a notification from the loop) and
// Release reports true: the caller then forgets the entry if Idle still
// says so under its own lock.
func (s *SharedLoop) Release() (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs--
	if s.subs != 0 {
		return false
	}
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
	return true
}

// Idle reports whether the entry has no holder.
func (s *SharedLoop) Idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs == 0
}

// HoldIn is Acquire for an entry a namer shares through the map m (guarded
// by mu): the first holder starts run and makes v the entry of k, unless
// another already is.
func HoldIn[K, V comparable](s *SharedLoop, l *Loops, run func(context.Context), mu *sync.Mutex, m map[K]V, k K, v V) {
	if !s.Acquire(l, run) {
		return
	}
	var none V
	mu.Lock()
	if m[k] == none {
		m[k] = v
	}
	mu.Unlock()
}

// UnholdIn undoes HoldIn: the last holder stops the loop and forgets v, so
// that unwatched names cost nothing, unless a new holder came meanwhile or
// another entry took k.
func UnholdIn[K, V comparable](s *SharedLoop, mu *sync.Mutex, m map[K]V, k K, v V) {
	if !s.Release() {
		return
	}
	mu.Lock()
	if s.Idle() && m[k] == v {
		delete(m, k)
	}
	mu.Unlock()
}
