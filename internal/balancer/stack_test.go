package balancer_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/balancer"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// backend is a loopback HTTP server that can be killed and restarted on
// the same port.
type backend struct {
	t       *testing.T
	addr    string
	handler http.Handler
	hits    atomic.Int64

	mu  sync.Mutex
	srv *http.Server
	wg  sync.WaitGroup
}

func newBackend(t *testing.T, h http.HandlerFunc) *backend {
	b := &backend{t: t, addr: "127.0.0.1:0"}
	b.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		h(w, r)
	})
	b.start()
	t.Cleanup(b.kill)
	return b
}

func (b *backend) start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after a kill
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		b.t.Errorf("restarting backend on %s: %v", b.addr, err)
		return
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: b.handler}
	b.srv = srv
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		srv.Serve(ln)
	}()
}

// kill closes the listener and every connection at once, like a crash.
func (b *backend) kill() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
		b.wg.Wait()
	}
}

func (b *backend) address() naming.Address {
	host, port, _ := net.SplitHostPort(b.addr)
	p, _ := strconv.Atoi(port)
	return naming.Address{Host: host, Port: p, Weight: 1}
}

// stack is the path the router builds (see middleware.Chain), minus the
// proxy: Classify → EnforceDeadline → TotalTimeout → Retry → Requeue →
// balancer → AttemptTimeout → PropagateDeadline → transport.
type stack struct {
	rt      http.RoundTripper
	bal     balancer.Balancer
	reg     *telemetry.Registry
	service telemetry.Scope
	client  telemetry.Scope
}

func newStack(t *testing.T, lb balancer.Options, classifier string, retries middleware.RetryOptions, bs ...*backend) *stack {
	t.Helper()
	reg := telemetry.NewRegistry()
	s := &stack{
		reg:     reg,
		service: reg.Scope().Scope("rt", "test", "service", "svc/test"),
		client:  reg.Scope().Scope("rt", "test", "client", "$/inet/test"),
	}
	tr := &http.Transport{
		DialContext:         middleware.Dialer(500*time.Millisecond, nil),
		MaxIdleConnsPerHost: 64,
	}
	t.Cleanup(tr.CloseIdleConnections)
	bal, err := balancer.New(lb, s.client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bal.Close)
	as := make([]naming.Address, len(bs))
	for i, b := range bs {
		as[i] = b.address()
	}
	bal.Update(as)
	cls, err := middleware.NewClassifier(classifier)
	if err != nil {
		t.Fatal(err)
	}
	retry, err := middleware.Retry(retries, cls, s.service)
	if err != nil {
		t.Fatal(err)
	}
	requeue, err := middleware.Requeue(middleware.BudgetOptions{}, s.client)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := middleware.Chain(middleware.AttemptTimeout(5*time.Second), middleware.PropagateDeadline())(tr)
	s.rt = middleware.Chain(
		middleware.Classify(cls),
		middleware.EnforceDeadline(middleware.DeadlineOptions{}),
		middleware.TotalTimeout(10*time.Second),
		retry,
		requeue,
	)(balancer.NewRoundTripper(bal, endpoint, middleware.Failure(cls)))
	s.bal = bal
	return s
}

type result struct {
	requests, failures int64
	firstErr           error
}

// load sends n GETs from conc goroutines; each request's result is
// checked (status 200 and body read fully). every, if set, runs after
// each completed request with the running count.
func (s *stack) load(n, conc int, every func(done int64)) result {
	var next, done, failures atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				err := s.get()
				if err != nil {
					failures.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
				d := done.Add(1)
				if every != nil {
					every(d)
				}
			}
		}()
	}
	wg.Wait()
	return result{requests: int64(n), failures: failures.Load(), firstErr: firstErr}
}

func (s *stack) get() error {
	req, _ := http.NewRequest("GET", "http://svc.test/", nil)
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return errors.New(resp.Status)
	}
	return nil
}

func (s *stack) counter(scope telemetry.Scope, name string) int64 { return scope.Counter(name).Value() }

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }

// Three endpoints; one is killed while 20 000 GETs run at 32 concurrency
// and restarted later. No request may fail; the dead endpoint must be
// ejected and must rejoin.
func TestKilledEndpointNoVisibleFailures(t *testing.T) {
	bs := []*backend{newBackend(t, ok), newBackend(t, ok), newBackend(t, ok)}
	s := newStack(t, balancer.Options{FailureAccrual: balancer.AccrualOptions{
		Kind: balancer.AccrualConsecutiveFailures, Failures: 5,
		Backoff: &backoff.Options{Kind: backoff.KindConstant, Ms: 100},
	}}, middleware.ClassifierRetryableRead5XX, middleware.RetryOptions{}, bs...)

	const n = 20000
	var hitsAtRestart atomic.Int64
	var killOnce, restartOnce sync.Once
	res := s.load(n, 32, func(d int64) {
		switch {
		case d == n/4:
			killOnce.Do(func() { go bs[2].kill() })
		case d == 3*n/5:
			restartOnce.Do(func() {
				hitsAtRestart.Store(bs[2].hits.Load())
				go bs[2].start()
			})
		}
	})
	removals := s.counter(s.client, "failure_accrual/removals")
	revivals := s.counter(s.client, "failure_accrual/revivals")
	retries := s.counter(s.service, "retries/total")
	requeues := s.counter(s.client, "retries/requeues")
	after := bs[2].hits.Load() - hitsAtRestart.Load()
	t.Logf("killed endpoint: %d requests, %d failures, %d retries, %d requeues, %d ejections, %d revivals, %d probes; hits per endpoint %d/%d/%d (%d on the restarted one after restart)",
		res.requests, res.failures, retries, requeues, removals, revivals,
		s.counter(s.client, "failure_accrual/probes"), bs[0].hits.Load(), bs[1].hits.Load(), bs[2].hits.Load(), after)
	if res.failures != 0 {
		t.Errorf("%d of %d requests failed, want 0; first: %v", res.failures, res.requests, res.firstErr)
	}
	if removals < 1 {
		t.Errorf("failure_accrual/removals = %d, want ≥ 1", removals)
	}
	if revivals < 1 || after < 100 {
		t.Errorf("restarted endpoint: %d revivals, %d requests after restart; want it back in rotation", revivals, after)
	}
}

// One endpoint of three fails half its requests with 500: with
// retryableRead5XX, at least 99.9% of requests succeed. Then every endpoint
// fails: the retry budget caps the extra load.
func TestFlakyEndpointAndBudgetCap(t *testing.T) {
	var broken atomic.Bool
	var flip atomic.Int64
	flaky := func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() || flip.Add(1)%2 == 0 {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, "ok")
	}
	healthy := func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, "ok")
	}
	bs := []*backend{newBackend(t, healthy), newBackend(t, healthy), newBackend(t, flaky)}
	// ttl 60 s (the maximum): nothing expires during the test, so the cap
	// below is exact however slow the machine.
	pct, minPerSec, ttl := 0.2, 5, 60
	s := newStack(t, balancer.Options{FailureAccrual: balancer.AccrualOptions{Kind: balancer.AccrualNone}},
		middleware.ClassifierRetryableRead5XX,
		middleware.RetryOptions{Budget: middleware.BudgetOptions{PercentCanRetry: &pct, MinRetriesPerSec: &minPerSec, TTLSecs: &ttl}}, bs...)

	const n = 6000
	res := s.load(n, 16, nil)
	retries := s.counter(s.service, "retries/total")
	rate := 1 - float64(res.failures)/float64(res.requests)
	t.Logf("flaky endpoint: %d requests, %d failures (success %.4f), %d retries, %d budget exhausted; flaky endpoint served %d",
		res.requests, res.failures, rate, retries, s.counter(s.service, "retries/budget_exhausted"), bs[2].hits.Load())
	if rate < 0.999 {
		t.Errorf("success rate %.4f, want ≥ 0.999 (first failure: %v)", rate, res.firstErr)
	}
	if retries == 0 {
		t.Error("no retries recorded")
	}

	// Flood: everything fails. Retries may not exceed the reserve
	// (5/s × 60 s) plus 20% of all requests in the TTL window.
	broken.Store(true)
	before := retries
	const flood = 4000
	fres := s.load(flood, 16, nil)
	floodRetries := s.counter(s.service, "retries/total") - before
	limit := int64(float64(n+flood)*pct) + int64(minPerSec*ttl) - before
	t.Logf("flood: %d requests, %d failed, %d retries (cap %d), %d budget exhausted",
		flood, fres.failures, floodRetries, limit, s.counter(s.service, "retries/budget_exhausted"))
	if floodRetries > limit {
		t.Errorf("flood caused %d retries, budget allows at most %d", floodRetries, limit)
	}
	if floodRetries < limit-int64(16) { // 16 workers may each be between a check and a withdrawal
		t.Errorf("flood caused only %d retries; the budget allowed %d", floodRetries, limit)
	}
	if fres.failures != flood {
		t.Errorf("flood: %d failures of %d, want all (every endpoint returns 500)", fres.failures, flood)
	}
}

// One endpoint 20× slower: with ewma it gets under 10% of requests.
func TestEWMAAvoidsSlowEndpoint(t *testing.T) {
	delay := func(d time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(d)
			io.WriteString(w, "ok")
		}
	}
	bs := []*backend{newBackend(t, delay(time.Millisecond)), newBackend(t, delay(time.Millisecond)), newBackend(t, delay(20*time.Millisecond))}
	s := newStack(t, balancer.Options{Kind: balancer.KindEWMA, FailureAccrual: balancer.AccrualOptions{Kind: balancer.AccrualNone}},
		"", middleware.RetryOptions{}, bs...)
	const n = 3000
	res := s.load(n, 8, nil)
	share := float64(bs[2].hits.Load()) / n
	t.Logf("ewma: %d requests, %d failures; hits %d/%d/%d, slow share %.3f",
		res.requests, res.failures, bs[0].hits.Load(), bs[1].hits.Load(), bs[2].hits.Load(), share)
	if res.failures != 0 {
		t.Errorf("%d failures: %v", res.failures, res.firstErr)
	}
	if share >= 0.10 {
		t.Errorf("slow endpoint got %.1f%% of requests, want < 10%%", 100*share)
	}
}

// A request whose l5d-ctx-deadline already passed never reaches a backend
// and is charged to no endpoint.
func TestPastDeadlineNeverSent(t *testing.T) {
	b := newBackend(t, ok)
	s := newStack(t, balancer.Options{}, "", middleware.RetryOptions{}, b)
	h := http.Header{}
	past := time.Now().Add(-time.Second)
	h.Set(middleware.HeaderDeadline, strconv.FormatInt(past.Add(-time.Second).UnixNano(), 10)+" "+strconv.FormatInt(past.UnixNano(), 10))
	d, found, err := middleware.ReadDeadline(h)
	if err != nil || !found {
		t.Fatalf("ReadDeadline: %v %v", found, err)
	}
	req, _ := http.NewRequestWithContext(middleware.WithDeadline(context.Background(), d), "GET", "http://svc.test/", nil)
	_, err = s.rt.RoundTrip(req)
	var te *middleware.TimeoutError
	if !errors.As(err, &te) || te.Kind != middleware.TimeoutDeadline {
		t.Fatalf("got %v, want a deadline TimeoutError", err)
	}
	if b.hits.Load() != 0 {
		t.Fatalf("backend received %d requests", b.hits.Load())
	}
	for _, ep := range s.bal.Endpoints() {
		if ep.Pending() != 0 {
			t.Errorf("endpoint %s charged: pending %d", ep.Key, ep.Pending())
		}
	}
}
