package resilience

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// With loadBalancer ewma, an endpoint 20× slower than its two peers gets
// fewer than 10% of the requests. One caller sends them in sequence, so
// no endpoint ever has a request outstanding when the next is picked:
// the default p2c (least outstanding) cannot tell the three apart and
// gives the slow one about a third (measured: 33.5%); only the latency
// estimate can.
func TestEWMAAvoidsSlowEndpoint(t *testing.T) {
	t.Parallel()
	delayed := func(name string, d time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(d)
			io.WriteString(w, name)
		}
	}
	const fast, slow = 5 * time.Millisecond, 100 * time.Millisecond
	a := newBackend(t, "a", delayed("a", fast))
	b := newBackend(t, "b", delayed("b", fast))
	s := newBackend(t, "slow", delayed("slow", slow))
	dir := fsDir(t, map[string]string{"web": a.fsLine() + b.fsLine() + s.fsLine()})
	admin, port := freePort(t), freePort(t)
	start(t, "router", fsRouter(admin, port, dir, `  client:
    loadBalancer:
      kind: ewma
`), admin)

	const total, workers = 1000, 1
	l := newLoad(port, "web", workers)
	t0 := time.Now()
	l.run(total, workers)
	l.requireNoFailures(t)
	c := l.counts()
	share := float64(c["slow"]) / float64(total)
	t.Logf("requests %d in %v at %d callers, failures %d: a=%d b=%d slow=%d (slow share %.3f; endpoint delays %v vs %v)",
		total, time.Since(t0).Round(time.Millisecond), workers, len(l.failed()), c["a"], c["b"], c["slow"], share, fast, slow)
	if share >= 0.10 {
		t.Errorf("the 20× slower endpoint got %.1f%% of requests; want < 10%%", 100*share)
	}
}
