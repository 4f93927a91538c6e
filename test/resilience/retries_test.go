package resilience

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

// One of three endpoints answers 500 half of the time; with
// retryableRead5XX the callers see ≥ 99.9% success. Then a flood against
// a service that always fails proves the retries stay within the budget:
// retries ≤ percentCanRetry × requests + minRetriesPerSec × seconds.
func TestRetriesWithinBudget(t *testing.T) {
	t.Parallel()
	ok := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }
	}
	a := newBackend(t, "a", ok("a"))
	b := newBackend(t, "b", ok("b"))
	flaky := newBackend(t, "flaky", func(w http.ResponseWriter, r *http.Request) {
		if rand.IntN(2) == 0 {
			http.Error(w, "flaky", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "flaky")
	})
	down := newBackend(t, "down", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	})
	dir := fsDir(t, map[string]string{
		"web":   a.fsLine() + b.fsLine() + flaky.fsLine(),
		"flood": down.fsLine(),
	})
	const pct, minPerSec, ttl = 0.5, 1, 10
	admin, port := freePort(t), freePort(t)
	rt := start(t, "router", fsRouter(admin, port, dir, fmt.Sprintf(`  client:
    failureAccrual:
      kind: none
  service:
    responseClassifier:
      kind: io.l5d.http.retryableRead5XX
    retries:
      budget:
        percentCanRetry: %g
        minRetriesPerSec: %d
        ttlSecs: %d
`, pct, minPerSec, ttl)), admin)

	const total, workers = 5000, 16
	l := newLoad(port, "web", workers)
	l.run(total, workers)
	m := rt.metrics(t)
	svc := "rt/web/service/svc/web/"
	failures := len(l.failed())
	success := float64(l.ok.Load()) / float64(total)
	t.Logf("flaky phase: requests %d, client-visible failures %d (success %.4f), retries %g, budget_exhausted %g; flaky endpoint answered %d",
		total, failures, success, m[svc+"retries/total"], m[svc+"retries/budget_exhausted"], flaky.hits.Load())
	if success < 0.999 {
		t.Errorf("success %.4f < 0.999; first failures: %v", success, l.failed()[:min(failures, 5)])
	}
	if m[svc+"retries/total"] == 0 {
		t.Errorf("no retries recorded although the flaky endpoint failed; service metrics:\n%s", dump(metricsLike(m, svc)))
	}

	// The flood: every attempt fails, so only the budget stops retries.
	const floodN = 2000
	fl := newLoad(port, "flood", workers)
	t0 := time.Now()
	fl.run(floodN, workers)
	secs := time.Since(t0).Seconds()
	m = rt.metrics(t)
	fsvc := "rt/web/service/svc/flood/"
	retries := m[fsvc+"retries/total"]
	bound := pct*floodN + float64(minPerSec)*(ttl+secs)
	t.Logf("flood: requests %d in %.1fs, failures %d, retries %g (budget bound %.0f), budget_exhausted %g, endpoint attempts %d",
		floodN, secs, len(fl.failed()), retries, bound, m[fsvc+"retries/budget_exhausted"], down.hits.Load())
	if retries > bound {
		t.Errorf("retries/total = %g exceeds the budget bound %.0f", retries, bound)
	}
	if retries < 0.8*pct*floodN {
		t.Errorf("retries/total = %g; want about %.0f (the budget should be used when every attempt fails)", retries, pct*floodN)
	}
	if m[fsvc+"retries/budget_exhausted"] == 0 {
		t.Errorf("retries/budget_exhausted = 0 during a flood of failures")
	}
	if got, want := down.hits.Load(), int64(floodN)+int64(retries); got != want {
		t.Errorf("the endpoint saw %d attempts; want requests + retries = %d", got, want)
	}
	if len(fl.failed()) != floodN {
		t.Errorf("%d of %d flood requests failed; want all (the endpoint always answers 500)", len(fl.failed()), floodN)
	}
}
