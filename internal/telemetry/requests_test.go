package telemetry_test

import (
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

func TestRequestStatsNames(t *testing.T) {
	reg := telemetry.NewRegistry()
	rt := telemetry.RouterScope(reg.Scope(), "r")
	st := telemetry.NewRequestStats(telemetry.ClientScope(rt, "/$/inet/127.1/80"))
	t0 := st.Start()
	if st.Pending() != 1 {
		t.Fatalf("pending %d", st.Pending())
	}
	st.End(t0, 204, "")
	st.End(st.Start(), 0, telemetry.FailureTimeout)
	if st.Pending() != 0 {
		t.Fatalf("pending %d", st.Pending())
	}
	reg.Roll()
	flat := telemetry.Flat(reg)
	p := "rt/r/client/$/inet/127.1/80/"
	for k, v := range map[string]any{
		"requests": int64(2), "success": int64(1), "failures": int64(1),
		"failures/RequestTimeout": int64(1), "status/204": int64(1), "status/2XX": int64(1),
		"status/error": int64(1), "pending": 0.0, "time/2XX.count": int64(1),
		"time/error.count": int64(1), "request_latency_ms.count": int64(2),
	} {
		if flat[p+k] != v {
			t.Errorf("%s = %#v, want %#v", p+k, flat[p+k], v)
		}
	}
	for _, absent := range []string{"status/5XX", "status/1XX", "time/4XX.count"} {
		if _, ok := flat[p+absent]; ok {
			t.Errorf("%s exists though no such response was seen", absent)
		}
	}
	// A RequestStats rebuilt for the same scope (a cache entry evicted and
	// re-created) continues the same metrics, pending included.
	t1 := st.Start()
	st.Close()
	again := telemetry.NewRequestStats(telemetry.ClientScope(rt, "/$/inet/127.1/80"))
	t2 := again.Start()
	if flat := telemetry.Flat(reg); flat[p+"pending"] != 2.0 {
		t.Errorf("pending = %v with one request in flight in each", flat[p+"pending"])
	}
	st.End(t1, 200, "")
	again.End(t2, 200, "")
	if flat := telemetry.Flat(reg); flat[p+"pending"] != 0.0 || flat[p+"requests"] != int64(4) {
		t.Errorf("after both ended: pending %v requests %v", flat[p+"pending"], flat[p+"requests"])
	}
}

func TestRequestStatsConcurrent(t *testing.T) {
	reg := telemetry.NewRegistry()
	st := telemetry.NewRequestStats(reg.Scope().Scope("s"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				st.Observe(time.Millisecond, 200+g*50+i%3, "")
				if i%100 == 0 {
					reg.Roll()
				}
			}
		}()
	}
	wg.Wait()
	if n := reg.Scope().Scope("s").Counter("requests").Value(); n != 4000 {
		t.Fatalf("requests %d", n)
	}
}

func TestRecordingDoesNotAllocate(t *testing.T) {
	reg := telemetry.NewRegistry()
	st := telemetry.NewRequestStats(reg.Scope().Scope("rt", "x", "server", "0.0.0.0/80"))
	st.End(st.Start(), 200, "")
	st.End(st.Start(), 0, telemetry.FailureConnect)
	n := testing.AllocsPerRun(200, func() {
		st.End(st.Start(), 200, "")
		st.End(st.Start(), 503, telemetry.FailureClassified)
		st.End(st.Start(), 0, telemetry.FailureConnect)
	})
	if n != 0 {
		t.Fatalf("recording allocated %v times per run", n)
	}
}

func BenchmarkRequestStats(b *testing.B) {
	reg := telemetry.NewRegistry()
	st := telemetry.NewRequestStats(reg.Scope().Scope("rt", "x", "server", "0.0.0.0/80"))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st.End(st.Start(), 200, "")
		}
	})
}

func BenchmarkCounterStat(b *testing.B) {
	reg := telemetry.NewRegistry()
	c := reg.Scope().Scope("rt", "x").Counter("requests")
	s := reg.Scope().Scope("rt", "x").Stat("request_latency_ms")
	b.ReportAllocs()
	for i := range b.N {
		c.Inc()
		s.Add(int64(i & 1023))
	}
}

func TestProcessGauges(t *testing.T) {
	reg := telemetry.NewRegistry()
	telemetry.RegisterProcessGauges(reg.Scope())
	flat := telemetry.Flat(reg)
	for _, k := range []string{"process/goroutines", "process/mem/heap_bytes", "process/mem/total_bytes"} {
		if v, _ := flat[k].(float64); v <= 0 {
			t.Errorf("%s = %v, want > 0", k, flat[k])
		}
	}
	if _, ok := flat["process/uptime_ms"]; !ok {
		t.Error("no uptime")
	}
}
