package balancer

import (
	"hash/maphash"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/clock"
	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// New returns a balancer of kind opts.Kind with opts.FailureAccrual. Its
// metrics (loadbalancer/*, failure_accrual/*) go under scope, which should
// be the client scope rt/<router>/client/<id>/. It starts empty: feed it
// with Update.
func New(opts Options, scope telemetry.Scope) (Balancer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	bo, err := backoff.New(*opts.FailureAccrual.Backoff)
	if err != nil {
		return nil, err
	}
	b := &lb{
		opts:    opts,
		kind:    kindOf(opts.Kind),
		tau:     float64(time.Duration(opts.DecayTimeMs) * time.Millisecond),
		smooth:  float64(time.Duration(opts.SmoothWindowMs) * time.Millisecond),
		backoff: bo,
		byKey:   map[string]*Endpoint{},
		seed:    maphash.MakeSeed(),
		scope:   scope,
		m: metrics{
			adds:        scope.Counter("loadbalancer/adds"),
			removes:     scope.Counter("loadbalancer/removes"),
			updates:     scope.Counter("loadbalancer/updates"),
			effort:      scope.Counter("loadbalancer/max_effort_exhausted"),
			removals:    scope.Counter("failure_accrual/removals"),
			revivals:    scope.Counter("failure_accrual/revivals"),
			removedFor:  scope.Counter("failure_accrual/removed_for_ms"),
			probes:      scope.Counter("failure_accrual/probes"),
			noEndpoints: scope.Counter("loadbalancer/no_endpoints"),
		},
	}
	b.snap.Store(&snapshot{})
	b.aperture.Store(int64(opts.MinAperture))
	b.tokens.New = func() any {
		t := &token{b: b}
		t.fn = t.done
		return t
	}
	scope.Gauge("loadbalancer/size", func() float64 { return float64(len(b.snap.Load().eps)) })
	scope.Gauge("loadbalancer/available", b.available)
	scope.Gauge("loadbalancer/load", func() float64 { return float64(b.inflight.Load()) })
	if b.kind == kindAperture {
		scope.Gauge("loadbalancer/aperture", func() float64 { return float64(b.apertureSize(b.snap.Load())) })
	}
	return b, nil
}

type kind uint8

const (
	kindP2C kind = iota
	kindEWMA
	kindAperture
	kindHeap
	kindRoundRobin
)

func kindOf(s string) kind {
	switch s {
	case KindEWMA:
		return kindEWMA
	case KindAperture:
		return kindAperture
	case KindHeap:
		return kindHeap
	case KindRoundRobin:
		return kindRoundRobin
	}
	return kindP2C
}

type metrics struct {
	adds, removes, updates, effort         *telemetry.Counter
	removals, revivals, removedFor, probes *telemetry.Counter
	noEndpoints                            *telemetry.Counter
}

// snapshot is an immutable endpoint set, swapped atomically by Update.
type snapshot struct {
	eps []*Endpoint
	// weights[i] is eps[i]'s weight; cum holds their running sums. Both are
	// nil when every weight is equal, and picks are then uniform.
	weights []float64
	cum     []float64
}

type lb struct {
	opts    Options
	kind    kind
	tau     float64 // EWMA decay, ns
	smooth  float64 // aperture load smoothing, ns
	backoff backoff.Policy
	scope   telemetry.Scope
	m       metrics
	seed    maphash.Seed

	snap     atomic.Pointer[snapshot]
	inflight atomic.Int64
	rr       atomic.Uint64
	closed   atomic.Bool

	// Aperture: current size and smoothed in-flight load.
	aperture  atomic.Int64
	apLoad    atomic.Uint64 // float64 bits
	apStamp   atomic.Int64
	apAdjustM sync.Mutex

	tokens sync.Pool

	mu    sync.Mutex // serialises Update and Close
	byKey map[string]*Endpoint
}

// token carries one picked request to its done call; pooled so that Pick
// does not allocate (fn is t.done bound once).
type token struct {
	b     *lb
	ep    *endpointState
	start int64
	probe bool
	fn    func(bool)
}

func (b *lb) Update(addrs []naming.Address) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return
	}
	b.m.updates.Inc()
	next := make(map[string]*Endpoint, len(addrs))
	eps := make([]*Endpoint, 0, len(addrs))
	for _, a := range addrs {
		if !(a.Weight > 0) || math.IsInf(a.Weight, 1) {
			a.Weight = 1 // unset (0), negative or NaN: the namer default
		}
		key := a.HostPort()
		if _, dup := next[key]; dup {
			continue
		}
		old := b.byKey[key]
		var ep *Endpoint
		switch {
		case old != nil && old.Weight == a.Weight && reflect.DeepEqual(old.Meta, a.Meta):
			ep = old
		case old != nil:
			ep = &Endpoint{Address: a, Key: key, state: old.state}
		default:
			b.m.adds.Inc()
			st := &endpointState{created: time.Now(), policy: newPolicy(b.opts.FailureAccrual)}
			st.backoff = b.backoff.Stream()
			ep = &Endpoint{Address: a, Key: key, state: st}
		}
		next[key] = ep
		eps = append(eps, ep)
	}
	for k := range b.byKey {
		if _, ok := next[k]; !ok {
			b.m.removes.Inc()
		}
	}
	b.byKey = next
	if b.kind == kindAperture {
		// A per-balancer pseudo-random but stable order, so that the
		// aperture keeps the same endpoints across updates and different
		// routers favour different subsets.
		slices.SortFunc(eps, func(x, y *Endpoint) int {
			hx, hy := maphash.String(b.seed, x.Key), maphash.String(b.seed, y.Key)
			switch {
			case hx < hy:
				return -1
			case hx > hy:
				return 1
			}
			return 0
		})
	}
	s := &snapshot{eps: eps}
	for _, ep := range eps {
		if ep.Weight != eps[0].Weight {
			s.weights = make([]float64, len(eps))
			s.cum = make([]float64, len(eps))
			total := 0.0
			for i, e := range eps {
				total += e.Weight
				s.weights[i], s.cum[i] = e.Weight, total
			}
			break
		}
	}
	b.snap.Store(s)
}

func (b *lb) Endpoints() []*Endpoint { return slices.Clone(b.snap.Load().eps) }

func (b *lb) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Swap(true) {
		return
	}
	for _, g := range []string{"loadbalancer/size", "loadbalancer/available", "loadbalancer/load", "loadbalancer/aperture"} {
		b.scope.RemoveGauge(g)
	}
	b.snap.Store(&snapshot{})
	clear(b.byKey)
}

func (b *lb) available() float64 {
	n := 0
	for _, ep := range b.snap.Load().eps {
		if ep.state.ejectedUntil.Load() == 0 {
			n++
		}
	}
	return float64(n)
}

// status of an endpoint as seen by one pick.
type status uint8

const (
	alive status = iota
	ejected
	probeReady
)

func stateOf(s *endpointState, now int64) status {
	u := s.ejectedUntil.Load()
	switch {
	case u == 0:
		return alive
	case now < u || s.probing.Load():
		return ejected
	}
	return probeReady
}

func (b *lb) Pick() (*Endpoint, func(bool), error) {
	if b.closed.Load() {
		return nil, nil, ErrClosed
	}
	s := b.snap.Load()
	n := len(s.eps)
	if n == 0 {
		b.m.noEndpoints.Inc()
		return nil, nil, ErrNoEndpoints
	}
	now := clock.Mono()
	var ep *Endpoint
	probe := false
	switch {
	case n == 1:
		ep = s.eps[0]
		probe = stateOf(ep.state, now) == probeReady && ep.state.probing.CompareAndSwap(false, true)
	case b.kind == kindHeap:
		ep, probe = b.pickLeast(s, now)
	case b.kind == kindRoundRobin:
		ep, probe = b.pickRoundRobin(s, now)
	case b.kind == kindAperture:
		ep, probe = b.pickP2C(s, b.apertureSize(s), now)
	default:
		ep, probe = b.pickP2C(s, n, now)
	}
	if probe {
		b.m.probes.Inc()
	}
	t := b.tokens.Get().(*token)
	t.ep, t.start, t.probe = ep.state, now, probe
	ep.state.pending.Add(1)
	b.inflight.Add(1)
	return ep, t.fn, nil
}

// draw returns a random index below n, weighted when weights differ (n is
// len(s.eps) or an aperture prefix of it).
func draw(s *snapshot, n int) int {
	if s.cum == nil {
		return rand.IntN(n)
	}
	total := s.cum[n-1]
	r := rand.Float64() * total
	i := sort.SearchFloat64s(s.cum[:n], r)
	for i < n-1 && s.cum[i] <= r { // SearchFloat64s finds cum[i] >= r; need > r
		i++
	}
	return i
}

func (b *lb) cost(s *snapshot, i int, now int64) float64 {
	l := s.eps[i].state.load(now, b.tau, b.kind == kindEWMA)
	if s.weights != nil {
		l /= s.weights[i]
	}
	return l
}

// pickP2C is power of two choices among the first n endpoints: draw two,
// prefer one waiting for its probe, else the less loaded of those alive.
// After maxEffort draws without an alive one, it falls back to the less
// loaded of the last two regardless of state.
func (b *lb) pickP2C(s *snapshot, n int, now int64) (*Endpoint, bool) {
	if n == 1 {
		ep := s.eps[0]
		return ep, stateOf(ep.state, now) == probeReady && ep.state.probing.CompareAndSwap(false, true)
	}
	var i, j int
	for range b.opts.MaxEffort {
		i = draw(s, n)
		j = draw(s, n)
		for k := 0; j == i && k < 3; k++ {
			j = draw(s, n)
		}
		if j == i {
			j = (i + 1 + rand.IntN(n-1)) % n
		}
		si, sj := stateOf(s.eps[i].state, now), stateOf(s.eps[j].state, now)
		if si == probeReady && s.eps[i].state.probing.CompareAndSwap(false, true) {
			return s.eps[i], true
		}
		if sj == probeReady && s.eps[j].state.probing.CompareAndSwap(false, true) {
			return s.eps[j], true
		}
		switch {
		case si == alive && sj == alive:
			return s.eps[b.lesser(s, i, j, now)], false
		case si == alive:
			return s.eps[i], false
		case sj == alive:
			return s.eps[j], false
		}
	}
	b.m.effort.Inc()
	return s.eps[b.lesser(s, i, j, now)], false
}

func (b *lb) lesser(s *snapshot, i, j int, now int64) int {
	if b.cost(s, j, now) < b.cost(s, i, now) {
		return j
	}
	return i
}

// pickLeast returns the least loaded alive endpoint (the heap balancer's
// choice), scanning from a random start so ties spread. A linear scan over
// the snapshot gives the same answer as Finagle's heap without per-request
// heap maintenance; endpoint sets are small.
func (b *lb) pickLeast(s *snapshot, now int64) (*Endpoint, bool) {
	n := len(s.eps)
	start := rand.IntN(n)
	best, bestAny := -1, -1
	var bc, bac float64
	for k := range n {
		i := (start + k) % n
		st := stateOf(s.eps[i].state, now)
		if st == probeReady && s.eps[i].state.probing.CompareAndSwap(false, true) {
			return s.eps[i], true
		}
		c := b.cost(s, i, now)
		if bestAny < 0 || c < bac {
			bestAny, bac = i, c
		}
		if st == alive && (best < 0 || c < bc) {
			best, bc = i, c
		}
	}
	if best < 0 {
		b.m.effort.Inc()
		best = bestAny
	}
	return s.eps[best], false
}

// golden is 2^64/φ: successive multiples spread evenly over [0, 2^64).
const golden = 0x9E3779B97F4A7C15

// pickRoundRobin cycles through the endpoints, skipping unavailable ones
// up to maxEffort times. With unequal weights the cycle is a low-discrepancy
// walk over the cumulative weights, so each endpoint's share matches its
// weight.
func (b *lb) pickRoundRobin(s *snapshot, now int64) (*Endpoint, bool) {
	n := len(s.eps)
	var i int
	for range b.opts.MaxEffort {
		k := b.rr.Add(1)
		if s.cum == nil {
			i = int(k % uint64(n))
		} else {
			total := s.cum[n-1]
			r := float64(k*golden) / (1 << 64) * total
			i = sort.SearchFloat64s(s.cum, r)
			for i < n-1 && s.cum[i] <= r {
				i++
			}
			i = min(i, n-1)
		}
		switch stateOf(s.eps[i].state, now) {
		case probeReady:
			if s.eps[i].state.probing.CompareAndSwap(false, true) {
				return s.eps[i], true
			}
		case alive:
			return s.eps[i], false
		}
	}
	b.m.effort.Inc()
	return s.eps[i], false
}

// apertureSize is the current aperture clamped to the snapshot.
func (b *lb) apertureSize(s *snapshot) int {
	a := int(b.aperture.Load())
	return max(1, min(a, len(s.eps)))
}

// adjustAperture folds the in-flight count into the smoothed load and
// widens or narrows the aperture by one when the load per endpoint in it
// leaves [lowLoad, highLoad].
func (b *lb) adjustAperture(now int64) {
	if !b.apAdjustM.TryLock() {
		return // someone else is adjusting; one sample is enough
	}
	defer b.apAdjustM.Unlock()
	x := float64(b.inflight.Load())
	prev := b.apStamp.Swap(now)
	l := math.Float64frombits(b.apLoad.Load())
	w := math.Exp(-float64(max(now-prev, 0)) / b.smooth)
	l = x*(1-w) + l*w
	b.apLoad.Store(math.Float64bits(l))
	n := len(b.snap.Load().eps)
	a := b.aperture.Load()
	per := l / float64(a)
	switch {
	case per > b.opts.HighLoad && int(a) < n:
		b.aperture.Add(1)
	case per < b.opts.LowLoad && int(a) > b.opts.MinAperture:
		b.aperture.Add(-1)
	}
}

func (t *token) done(failed bool) {
	b, s, now := t.b, t.ep, clock.Mono()
	s.pending.Add(-1)
	b.inflight.Add(-1)
	if b.kind == kindEWMA {
		s.observe(now, now-t.start, b.tau)
	}
	b.record(s, failed, t.probe, now)
	if b.kind == kindAperture {
		b.adjustAperture(now)
	}
	t.ep, t.probe = nil, false
	b.tokens.Put(t)
}

// record applies one outcome to failure accrual.
func (b *lb) record(s *endpointState, failed, probe bool, now int64) {
	if s.policy == nil {
		return // failureAccrual: none
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if probe {
		// Cleared last, once ejectedUntil says what happens next, so that
		// no concurrent Pick sees a stale deadline with no probe running.
		defer s.probing.Store(false)
	}
	switch ejectedNow := s.ejectedUntil.Load() != 0; {
	case ejectedNow && !failed:
		// The probe (or a request picked while everything was ejected, or
		// one in flight when the endpoint was ejected) succeeded.
		s.ejectedUntil.Store(0)
		s.policy.reset()
		s.backoff.Reset()
		b.m.revivals.Inc()
	case ejectedNow && probe:
		b.eject(s, now)
	case ejectedNow:
		// Failures of requests that were not the probe do not extend the
		// backoff.
	case s.policy.record(!failed, now):
		b.eject(s, now)
	}
}

func (b *lb) eject(s *endpointState, now int64) {
	d := s.backoff.Next()
	s.ejectedUntil.Store(now + max(int64(d), 1))
	b.m.removals.Inc()
	b.m.removedFor.Add(d.Milliseconds())
}
