package balancer

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linnet-mesh/linnet/internal/clock"
	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func addrs(n int) []naming.Address {
	as := make([]naming.Address, n)
	for i := range as {
		as[i] = naming.Address{Host: "127.0.0.1", Port: 10000 + i, Weight: 1}
	}
	return as
}

func newLB(t *testing.T, o Options) (Balancer, *telemetry.Registry) {
	t.Helper()
	r := telemetry.NewRegistry()
	b, err := New(o, r.Scope().Scope("rt", "test", "client", "x"))
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	t.Cleanup(b.Close)
	return b, r
}

func counter(r *telemetry.Registry, name string) int64 {
	var v int64 = -1
	r.Each(func(m telemetry.Metric) {
		if m.Name == name && m.Kind == telemetry.KindCounter {
			v = m.Counter.Value()
		}
	})
	return v
}

func gauge(r *telemetry.Registry, name string) float64 {
	v := math.NaN()
	r.Each(func(m telemetry.Metric) {
		if m.Name == name && m.Kind == telemetry.KindGauge {
			v = m.Gauge()
		}
	})
	return v
}

func TestEmptyAndClosed(t *testing.T) {
	b, _ := newLB(t, Options{})
	if _, _, err := b.Pick(); !errors.Is(err, ErrNoEndpoints) {
		t.Fatalf("Pick on empty: got %v, want ErrNoEndpoints", err)
	}
	b.Update(addrs(2))
	b.Close()
	if _, _, err := b.Pick(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pick after Close: got %v, want ErrClosed", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Kind: "random"}, `loadBalancer.kind: unknown kind "random"`},
		{Options{MaxEffort: -1}, "loadBalancer.maxEffort"},
		{Options{Kind: KindAperture, LowLoad: 3, HighLoad: 2}, "loadBalancer.lowLoad: must be < highLoad"},
		{Options{FailureAccrual: AccrualOptions{Kind: AccrualConsecutiveFailures}}, "failureAccrual.failures: required"},
		{Options{FailureAccrual: AccrualOptions{Kind: AccrualSuccessRate, SuccessRate: 1.5, Requests: 10}}, "failureAccrual.successRate"},
		{Options{FailureAccrual: AccrualOptions{Kind: AccrualSuccessRateWindowed, SuccessRate: 0.9}}, "failureAccrual.window"},
		{Options{FailureAccrual: AccrualOptions{Kind: "io.l5d.bogus"}}, `failureAccrual.kind: unknown kind "io.l5d.bogus"`},
		{Options{FailureAccrual: AccrualOptions{Kind: AccrualNone, Backoff: &backoff.Options{Kind: "jittered", MinMs: 10, MaxMs: 5}}}, "failureAccrual.backoff.maxMs"},
	} {
		_, err := New(tc.o, telemetry.Scope{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): got %v, want error containing %q", tc.o, err, tc.want)
		}
	}
}

// P2C least-loaded avoids an endpoint holding many requests.
func TestP2CPrefersLeastLoaded(t *testing.T) {
	b, _ := newLB(t, Options{})
	b.Update(addrs(3))
	// 50 requests in flight on endpoint 0.
	loaded := b.Endpoints()[0]
	loaded.state.pending.Add(50)
	counts := map[int]int{}
	for range 1000 {
		ep, done, _ := b.Pick()
		counts[ep.Port]++
		done(false)
	}
	if counts[10000] != 0 {
		t.Errorf("loaded endpoint got %d of 1000 picks, want 0 (counts %v)", counts[10000], counts)
	}
	if counts[10001] < 300 || counts[10002] < 300 {
		t.Errorf("idle endpoints unevenly used: %v", counts)
	}
	loaded.state.pending.Add(-50)
}

func TestWeights(t *testing.T) {
	for _, k := range []string{KindP2C, KindRoundRobin, KindEWMA} {
		t.Run(k, func(t *testing.T) {
			b, _ := newLB(t, Options{Kind: k})
			as := addrs(2)
			as[1].Weight = 3
			b.Update(as)
			if k == KindEWMA {
				// Give both endpoints the same latency history, so that only
				// weight and load tell them apart: the in-loop round trips
				// are nanoseconds long and their order within a batch would
				// otherwise decide the costs (decayTime is seconds, so these
				// primed values dominate for the whole loop).
				lb := b.(*lb)
				now := clock.Mono()
				for _, ep := range lb.Endpoints() {
					ep.state.observe(now, int64(time.Millisecond), lb.tau)
				}
			}
			counts := map[int]int{}
			var held []func(bool)
			// Keep requests outstanding so load (pending/weight) matters.
			for i := range 4000 {
				ep, done, err := b.Pick()
				if err != nil {
					t.Fatal(err)
				}
				counts[ep.Port]++
				held = append(held, done)
				if i%8 == 7 {
					for _, d := range held {
						d(false)
					}
					held = held[:0]
				}
			}
			for _, d := range held {
				d(false)
			}
			share := float64(counts[10001]) / 4000
			if share < 0.65 || share > 0.85 {
				t.Errorf("weight-3 endpoint share = %.2f, want ≈0.75 (counts %v)", share, counts)
			}
		})
	}
}

func TestRoundRobinCycles(t *testing.T) {
	b, _ := newLB(t, Options{Kind: KindRoundRobin})
	b.Update(addrs(3))
	counts := map[int]int{}
	for range 300 {
		ep, done, _ := b.Pick()
		counts[ep.Port]++
		done(false)
	}
	for p, c := range counts {
		if c != 100 {
			t.Errorf("port %d: %d picks, want exactly 100", p, c)
		}
	}
}

func TestHeapPicksLeast(t *testing.T) {
	b, _ := newLB(t, Options{Kind: KindHeap})
	b.Update(addrs(4))
	// Without completing, heap must spread 8 picks 2-2-2-2.
	var dones []func(bool)
	counts := map[int]int{}
	for range 8 {
		ep, done, _ := b.Pick()
		counts[ep.Port]++
		dones = append(dones, done)
	}
	for p, c := range counts {
		if c != 2 {
			t.Errorf("port %d: %d in flight, want 2 (%v)", p, c, counts)
		}
	}
	for _, d := range dones {
		d(false)
	}
}

func TestStateSurvivesRepublish(t *testing.T) {
	b, r := newLB(t, Options{})
	b.Update(addrs(2))
	ep, done, _ := b.Pick()
	before := ep.Pending()
	as := addrs(3)
	as[0].Weight = 2 // re-published with a new weight: state must carry over
	b.Update(as)
	var same *Endpoint
	for _, e := range b.Endpoints() {
		if e.Key == ep.Key {
			same = e
		}
	}
	if same == nil || same.Pending() != before || before != 1 {
		t.Fatalf("pending after republish = %v, want %d", same, before)
	}
	done(false)
	if same.Pending() != 0 {
		t.Fatalf("done on old endpoint value did not reach shared state")
	}
	if got := counter(r, "rt/test/client/x/loadbalancer/adds"); got != 3 {
		t.Errorf("adds = %d, want 3", got)
	}
	b.Update(addrs(1))
	if got := counter(r, "rt/test/client/x/loadbalancer/removes"); got != 2 {
		t.Errorf("removes = %d, want 2", got)
	}
	if got := gauge(r, "rt/test/client/x/loadbalancer/size"); got != 1 {
		t.Errorf("size gauge = %v, want 1", got)
	}
}

func TestConsecutiveFailuresEjectProbeRevive(t *testing.T) {
	b, r := newLB(t, Options{FailureAccrual: AccrualOptions{
		Kind: AccrualConsecutiveFailures, Failures: 3,
		Backoff: &backoff.Options{Kind: backoff.KindConstant, Ms: 30},
	}})
	b.Update(addrs(2))
	bad := "127.0.0.1:10000"
	failBad := func(n int) {
		for range n {
			ep, done, _ := b.Pick()
			done(ep.Key == bad)
		}
	}
	failBad(200)
	if got := counter(r, "rt/test/client/x/failure_accrual/removals"); got != 1 {
		t.Fatalf("removals = %d, want 1", got)
	}
	if got := gauge(r, "rt/test/client/x/loadbalancer/available"); got != 1 {
		t.Fatalf("available = %v, want 1", got)
	}
	// While ejected (backoff 30ms) the bad endpoint gets nothing.
	for range 100 {
		ep, done, _ := b.Pick()
		if ep.Key == bad {
			t.Fatal("ejected endpoint picked before its backoff elapsed")
		}
		done(false)
	}
	time.Sleep(40 * time.Millisecond)
	// The probe fails: re-ejected.
	failBad(50)
	if got := counter(r, "rt/test/client/x/failure_accrual/probes"); got != 1 {
		t.Fatalf("probes = %d, want 1", got)
	}
	if got := counter(r, "rt/test/client/x/failure_accrual/removals"); got != 2 {
		t.Fatalf("removals after failed probe = %d, want 2", got)
	}
	time.Sleep(40 * time.Millisecond)
	// Healthy again: the probe succeeds and it rejoins.
	seen := 0
	for range 100 {
		ep, done, _ := b.Pick()
		if ep.Key == bad {
			seen++
		}
		done(false)
	}
	if got := counter(r, "rt/test/client/x/failure_accrual/revivals"); got != 1 {
		t.Fatalf("revivals = %d, want 1", got)
	}
	if seen < 20 {
		t.Errorf("revived endpoint got %d of 100 picks, want a fair share", seen)
	}
	if got := counter(r, "rt/test/client/x/failure_accrual/removed_for_ms"); got != 60 {
		t.Errorf("removed_for_ms = %d, want 60", got)
	}
}

// Only one probe is in flight at a time, however many goroutines pick.
func TestSingleProbe(t *testing.T) {
	b, r := newLB(t, Options{FailureAccrual: AccrualOptions{
		Kind: AccrualConsecutiveFailures, Failures: 1,
		Backoff: &backoff.Options{Kind: backoff.KindConstant, Ms: 1},
	}})
	b.Update(addrs(2))
	for {
		ep, done, _ := b.Pick()
		done(ep.Port == 10000)
		if ep.Port == 10000 {
			break
		}
	}
	time.Sleep(5 * time.Millisecond)
	var mu sync.Mutex
	var probeDone []func(bool)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				ep, done, _ := b.Pick()
				if ep.Port == 10000 {
					mu.Lock()
					probeDone = append(probeDone, done)
					mu.Unlock()
					continue
				}
				done(false)
			}
		}()
	}
	wg.Wait()
	if len(probeDone) != 1 {
		t.Fatalf("%d requests reached the ejected endpoint, want exactly 1 probe", len(probeDone))
	}
	probeDone[0](false)
	if got := counter(r, "rt/test/client/x/failure_accrual/revivals"); got != 1 {
		t.Fatalf("revivals = %d, want 1", got)
	}
}

// When every endpoint is ejected the balancer keeps picking (Finagle).
func TestAllEjectedFallsBack(t *testing.T) {
	b, r := newLB(t, Options{FailureAccrual: AccrualOptions{
		Kind: AccrualConsecutiveFailures, Failures: 1,
		Backoff: &backoff.Options{Kind: backoff.KindConstant, Ms: 60000},
	}})
	b.Update(addrs(3))
	for range 50 {
		_, done, err := b.Pick()
		if err != nil {
			t.Fatal(err)
		}
		done(true)
	}
	if got := gauge(r, "rt/test/client/x/loadbalancer/available"); got != 0 {
		t.Fatalf("available = %v, want 0", got)
	}
	_, done, err := b.Pick()
	if err != nil {
		t.Fatalf("Pick with all ejected: %v, want a fallback endpoint", err)
	}
	done(false) // a success revives it
	if got := gauge(r, "rt/test/client/x/loadbalancer/available"); got != 1 {
		t.Fatalf("available after successful fallback = %v, want 1", got)
	}
}

func TestSuccessRatePolicies(t *testing.T) {
	for _, a := range []AccrualOptions{
		{Kind: AccrualSuccessRate, SuccessRate: 0.8, Requests: 20},
		{Kind: AccrualSuccessRateWindowed, SuccessRate: 0.8, Window: 30},
	} {
		t.Run(a.Kind, func(t *testing.T) {
			a.Backoff = &backoff.Options{Kind: backoff.KindConstant, Ms: 60000}
			b, r := newLB(t, Options{FailureAccrual: a})
			b.Update(addrs(2))
			// Endpoint 10000 fails exactly every 10th of its own requests
			// (90% > 80%): stays. Counting per endpoint keeps the rate
			// independent of the balancer's random picks.
			i := 0
			for range 400 {
				ep, done, _ := b.Pick()
				if ep.Port == 10000 {
					i++
				}
				done(ep.Port == 10000 && i%10 == 0)
			}
			if got := counter(r, "rt/test/client/x/failure_accrual/removals"); got != 0 {
				t.Fatalf("removals at 90%% success = %d, want 0", got)
			}
			// Now it fails every other request: ejected.
			for range 400 {
				ep, done, _ := b.Pick()
				if ep.Port == 10000 {
					i++
				}
				done(ep.Port == 10000 && i%2 == 0)
			}
			if got := counter(r, "rt/test/client/x/failure_accrual/removals"); got != 1 {
				t.Fatalf("removals at 50%% success = %d, want 1", got)
			}
		})
	}
}

func TestAccrualNone(t *testing.T) {
	b, r := newLB(t, Options{FailureAccrual: AccrualOptions{Kind: AccrualNone}})
	b.Update(addrs(2))
	for range 100 {
		_, done, _ := b.Pick()
		done(true)
	}
	if got := counter(r, "rt/test/client/x/failure_accrual/removals"); got != 0 {
		t.Fatalf("removals with accrual none = %d, want 0", got)
	}
}

// EWMA steers away from an endpoint with higher observed latency.
func TestEWMAAvoidsSlow(t *testing.T) {
	bi, _ := newLB(t, Options{Kind: KindEWMA})
	b := bi.(*lb)
	b.Update(addrs(3))
	now := clock.Mono()
	for _, ep := range b.Endpoints() {
		rtt := int64(time.Millisecond)
		if ep.Port == 10002 {
			rtt = 20 * int64(time.Millisecond)
		}
		ep.state.observe(now, rtt, b.tau)
	}
	counts := map[int]int{}
	for range 1000 {
		ep, done, _ := b.Pick()
		counts[ep.Port]++
		done(false) // zero-latency samples pull the fast ones down further
	}
	if counts[10002] > 0 {
		t.Errorf("slow endpoint got %d of 1000 picks with no load elsewhere, want 0 (%v)", counts[10002], counts)
	}
}

func TestApertureWidensUnderLoad(t *testing.T) {
	b, r := newLB(t, Options{Kind: KindAperture, SmoothWindowMs: 1, MinAperture: 1})
	b.Update(addrs(8))
	counts := map[int]int{}
	var held []func(bool)
	for range 200 {
		ep, done, _ := b.Pick()
		counts[ep.Port]++
		held = append(held, done)
		time.Sleep(50 * time.Microsecond)
		if len(held) > 12 { // keep ~12 in flight: > highLoad (2) per endpoint at small apertures
			held[0](false)
			held = held[1:]
		}
	}
	for _, d := range held {
		d(false)
	}
	if ap := gauge(r, "rt/test/client/x/loadbalancer/aperture"); ap < 4 {
		t.Errorf("aperture = %v under 12 in flight, want >= 4", ap)
	}
	if len(counts) < 4 {
		t.Errorf("only %d endpoints used under load: %v", len(counts), counts)
	}
	// Idle: it narrows back toward minAperture.
	for range 200 {
		_, done, _ := b.Pick()
		time.Sleep(20 * time.Microsecond)
		done(false)
	}
	if ap := gauge(r, "rt/test/client/x/loadbalancer/aperture"); ap > 2 {
		t.Errorf("aperture = %v when idle, want <= 2", ap)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, k := range []string{KindP2C, KindEWMA, KindAperture, KindHeap, KindRoundRobin} {
		b.Run(k, func(b *testing.B) {
			bal, err := New(Options{Kind: k}, telemetry.NewRegistry().Scope())
			if err != nil {
				b.Fatal(err)
			}
			defer bal.Close()
			bal.Update(addrs(16))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, _ := bal.Pick()
					done(false)
				}
			})
		})
	}
}

// Updates racing with picks: no panic, no lost done, every in-flight
// count returns to zero, for every kind.
func TestConcurrentUpdateAndPick(t *testing.T) {
	for _, k := range []string{KindP2C, KindEWMA, KindAperture, KindHeap, KindRoundRobin} {
		t.Run(k, func(t *testing.T) {
			b, _ := newLB(t, Options{Kind: k, FailureAccrual: AccrualOptions{
				Kind: AccrualConsecutiveFailures, Failures: 2,
				Backoff: &backoff.Options{Kind: backoff.KindConstant, Ms: 1},
			}})
			b.Update(addrs(4))
			stop := make(chan struct{})
			var wg sync.WaitGroup
			seen := sync.Map{}
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						ep, done, err := b.Pick()
						if err != nil {
							t.Error(err)
							return
						}
						seen.Store(ep.state, ep.Key)
						done((i+w)%3 == 0)
					}
				}()
			}
			for i := range 200 {
				b.Update(addrs(2 + i%5))
			}
			close(stop)
			wg.Wait()
			seen.Range(func(k, v any) bool {
				if p := k.(*endpointState).pending.Load(); p != 0 {
					t.Errorf("%v: pending %d after all done", v, p)
				}
				return true
			})
			if p := b.(*lb).inflight.Load(); p != 0 {
				t.Errorf("balancer in flight = %d, want 0", p)
			}
		})
	}
}
