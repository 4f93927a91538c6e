package clock

import (
	"testing"
	"time"
)

func TestMonoMeasuresElapsedTime(t *testing.T) {
	t0 := Mono()
	if t0 <= 0 {
		t.Fatalf("Mono() = %d after start, want > 0", t0)
	}
	time.Sleep(20 * time.Millisecond)
	d := Since(t0)
	if d < 20*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Since after a 20ms sleep = %v", d)
	}
	if t1 := Mono(); t1 < t0+int64(20*time.Millisecond) {
		t.Fatalf("Mono went from %d to %d across a 20ms sleep", t0, t1)
	}
}

func TestMonoAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = Mono() }); n != 0 {
		t.Fatalf("Mono allocates %v times", n)
	}
}

func BenchmarkMono(b *testing.B) {
	for b.Loop() {
		_ = Mono()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		_ = time.Now()
	}
}
