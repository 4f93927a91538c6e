package router

import (
	"testing"
	"time"
)

func TestMonoNow(t *testing.T) {
	a := monoNow()
	time.Sleep(20 * time.Millisecond)
	b := monoNow()
	if d := time.Duration(b - a); d < 20*time.Millisecond || d > 5*time.Second {
		t.Errorf("monoNow advanced %v over a 20ms sleep", d)
	}
	if c := coarseNow(); c%int64(10*time.Millisecond) != 0 || c > monoNow() {
		t.Errorf("coarseNow() = %d: not a 10ms step at or before monoNow", c)
	}
}

// BenchmarkCacheClock compares the caches' clock, read three times per
// request, with the time.Now it replaced.
func BenchmarkCacheClock(b *testing.B) {
	b.Run("monoNow", func(b *testing.B) {
		for b.Loop() {
			_ = coarseNow()
		}
	})
	b.Run("timeNow", func(b *testing.B) {
		for b.Loop() {
			n := time.Now().UnixNano()
			_ = n - n%int64(10*time.Millisecond)
		}
	})
}
