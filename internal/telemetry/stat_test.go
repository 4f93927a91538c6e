package telemetry

import "testing"

func TestBucketsRoundTrip(t *testing.T) {
	for _, v := range []int64{0, 1, 15, 16, 17, 31, 32, 100, 1000, 123456, 1 << 40} {
		b := bucketOf(v)
		lo, hi := bucketLow(b), bucketLow(b+1)
		if v < lo || v >= hi {
			t.Errorf("value %d: bucket %d covers [%d,%d)", v, b, lo, hi)
		}
	}
}

func TestStatPercentiles(t *testing.T) {
	s := NewStat()
	for i := int64(1); i <= 1000; i++ {
		s.Add(i)
	}
	sn := s.Snapshot()
	if sn.Count != 1000 || sn.Min != 1 || sn.Max != 1000 || sn.Sum != 500500 {
		t.Fatalf("got count=%d min=%d max=%d sum=%d", sn.Count, sn.Min, sn.Max, sn.Sum)
	}
	within := func(name string, got, want int64) {
		if d := float64(got-want) / float64(want); d > 0.07 || d < -0.07 {
			t.Errorf("%s = %d, want about %d", name, got, want)
		}
	}
	within("p50", sn.P50, 500)
	within("p99", sn.P99, 990)
	if last := sn.Buckets[len(sn.Buckets)-1]; last.Cumulative != 1000 {
		t.Errorf("last bucket cumulative %d, want 1000", last.Cumulative)
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	r := NewRegistry()
	c := r.Scope().Scope("rt", "x").Counter("requests")
	s := r.Scope().Scope("rt", "x").Stat("request_latency_ms")
	if n := testing.AllocsPerRun(100, func() { c.Inc(); s.Add(42) }); n != 0 {
		t.Fatalf("recording allocated %v times per run", n)
	}
}
