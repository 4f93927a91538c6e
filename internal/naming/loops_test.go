package naming

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// One loop runs per shared entry while it has holders; the last Release
// stops it, and Close stops the rest and starts nothing more.
func TestSharedLoops(t *testing.T) {
	var l Loops
	l.Init(context.Background())
	var running atomic.Int32
	started := make(chan struct{}, 4)
	run := func(ctx context.Context) {
		running.Add(1)
		started <- struct{}{}
		<-ctx.Done()
		running.Add(-1)
	}
	var a, b SharedLoop
	if !a.Acquire(&l, run) || a.Acquire(&l, run) {
		t.Fatal("only the first Acquire is first")
	}
	<-started
	if a.Release() || a.Idle() {
		t.Fatal("a holder is left: not the last")
	}
	if !b.Acquire(&l, run) {
		t.Fatal("b's first Acquire")
	}
	<-started
	if !a.Release() || !a.Idle() {
		t.Fatal("the last Release reports it")
	}
	for deadline := time.Now().Add(5 * time.Second); running.Load() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d loops running after a's last release, want 1 (b's)", running.Load())
		}
		time.Sleep(time.Millisecond)
	}
	l.Close() // waits for b's loop
	if n := running.Load(); n != 0 {
		t.Fatalf("%d loops running after Close", n)
	}
	var c SharedLoop
	c.Acquire(&l, run)
	select {
	case <-started:
		t.Fatal("a loop started after Close")
	case <-time.After(20 * time.Millisecond):
	}
}
