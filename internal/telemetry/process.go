package telemetry

import (
	"runtime/metrics"
	"sync"
	"time"
)

// RegisterProcessGauges publishes Go process metrics under process/ (the
// Go counterparts of the jvm/* metrics Linkerd's dashboard reads):
// process/uptime_ms, process/goroutines, process/mem/heap_bytes,
// process/mem/total_bytes and process/gc/cycles. Values are read at
// export time.
func RegisterProcessGauges(root Scope) {
	start := time.Now()
	p := root.Scope("process")
	p.Gauge("uptime_ms", func() float64 { return float64(time.Since(start).Milliseconds()) })
	for name, metric := range map[string]string{
		"goroutines":      "/sched/goroutines:goroutines",
		"mem/heap_bytes":  "/memory/classes/heap/objects:bytes",
		"mem/total_bytes": "/memory/classes/total:bytes",
		"gc/cycles":       "/gc/cycles/total:gc-cycles",
	} {
		p.Gauge(name, runtimeMetric(metric))
	}
}

// runtimeMetric returns a gauge function reading one runtime metric.
func runtimeMetric(name string) func() float64 {
	var mu sync.Mutex
	s := []metrics.Sample{{Name: name}}
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		metrics.Read(s)
		switch s[0].Value.Kind() {
		case metrics.KindUint64:
			return float64(s[0].Value.Uint64())
		case metrics.KindFloat64:
			return s[0].Value.Float64()
		}
		return 0
	}
}
