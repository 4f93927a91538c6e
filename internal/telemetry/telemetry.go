// Package telemetry is the metrics tree every component records into: a
// Registry of counters, gauges and stats (histograms) addressed by scoped
// names that follow Linkerd 1's tree (rt/<router>/server/..., namer/...).
// Constructors take a Scope; nothing registers globals. Recording on the hot
// path (Counter.Inc, Stat.Add) does not allocate. Exporters (metrics.json,
// Prometheus) walk the registry with Each.
//
// A scope element may contain '/' (a client id such as $/inet/127.1/8888 is
// one element); the registry remembers the element boundaries so that the
// tree view of metrics.json and the Prometheus labels see one node. Use
// the helpers of scopes.go (RouterScope, ServerScope, ClientScope,
// ServiceScope) rather than joining names by hand.
//
// Histograms are summarised per interval, as in Linkerd: every
// RollInterval (default one minute) each stat is snapshotted and reset, and
// exporters publish the last snapshot. Rolling is lazy (done by the export
// that finds the interval elapsed), so an idle registry costs nothing.
package telemetry

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRollInterval is how often histograms are snapshotted and reset
// (Linkerd's default interval).
const DefaultRollInterval = time.Minute

// Registry holds every metric of one process.
type Registry struct {
	mu       sync.RWMutex
	counters map[string]*Counter
	gauges   map[string]func() float64
	stats    map[string]*Stat
	updowns  map[string]*UpDown
	paths    map[string][]string // full name → tree path (scope elements + name elements)

	rollMu   sync.Mutex
	every    time.Duration
	now      func() time.Time
	lastRoll time.Time
	snaps    map[string]*Snapshot // last interval's summaries, by full name
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		counters: map[string]*Counter{},
		gauges:   map[string]func() float64{},
		stats:    map[string]*Stat{},
		updowns:  map[string]*UpDown{},
		paths:    map[string][]string{},
		every:    DefaultRollInterval,
		now:      time.Now,
		lastRoll: time.Now(),
	}
}

// SetRollInterval changes how often histograms are summarised and reset
// (d <= 0 restores the default). Tests and the live dashboard demo use a
// short interval.
func (r *Registry) SetRollInterval(d time.Duration) {
	if d <= 0 {
		d = DefaultRollInterval
	}
	r.rollMu.Lock()
	r.every = d
	r.rollMu.Unlock()
}

// SetClock replaces the clock used to decide when to roll (tests).
func (r *Registry) SetClock(now func() time.Time) {
	r.rollMu.Lock()
	r.now = now
	r.lastRoll = now()
	r.rollMu.Unlock()
}

// Roll summarises and resets every histogram now; exporters publish these
// summaries until the next roll. Each rolls by itself when the interval
// has elapsed, so callers only need Roll to force one.
func (r *Registry) Roll() {
	r.rollMu.Lock()
	defer r.rollMu.Unlock()
	r.rollLocked()
}

func (r *Registry) rollLocked() {
	r.mu.RLock()
	stats := make(map[string]*Stat, len(r.stats))
	for k, s := range r.stats {
		stats[k] = s
	}
	r.mu.RUnlock()
	snaps := make(map[string]*Snapshot, len(stats))
	for k, s := range stats {
		sn := s.snapshotAndReset()
		snaps[k] = &sn
	}
	r.snaps = snaps
	r.lastRoll = r.now()
}

// maybeRoll rolls when the interval has elapsed and returns the summaries.
func (r *Registry) maybeRoll() map[string]*Snapshot {
	r.rollMu.Lock()
	defer r.rollMu.Unlock()
	if r.now().Sub(r.lastRoll) >= r.every {
		r.rollLocked()
	}
	return r.snaps
}

// Scope is a position in the metrics tree. The zero Scope records into a
// private registry nobody reads; use Registry.Scope.
type Scope struct {
	r      *Registry
	prefix string   // "" or "a/b/" (always ends with '/')
	elems  []string // the scope's tree path; shared, never appended to in place
}

// Scope returns the root scope of r.
func (r *Registry) Scope() Scope { return Scope{r: r} }

// Scope returns the child scope named by the elements, e.g.
// s.Scope("rt", "incoming", "server") for rt/incoming/server/. Each element
// is one node of the tree even when it contains '/'; empty elements are
// skipped.
func (s Scope) Scope(names ...string) Scope {
	if s.r == nil {
		s.r = NewRegistry()
	}
	p := s.prefix
	elems := make([]string, len(s.elems), len(s.elems)+len(names))
	copy(elems, s.elems)
	for _, n := range names {
		if n == "" {
			continue
		}
		p += n + "/"
		elems = append(elems, n)
	}
	return Scope{r: s.r, prefix: p, elems: elems}
}

// Registry returns the registry the scope records into.
func (s Scope) Registry() *Registry { return s.r }

// Name returns the full name of metric n in this scope.
func (s Scope) Name(n string) string { return s.prefix + n }

// path returns the tree path of metric n: the scope's elements, then n
// split on '/' (so "status/2XX" is a node status with a child 2XX).
func (s Scope) path(n string) []string {
	out := make([]string, 0, len(s.elems)+1+strings.Count(n, "/"))
	out = append(out, s.elems...)
	return append(out, strings.Split(n, "/")...)
}

// Counter returns the counter n in this scope, creating it on first use.
func (s Scope) Counter(n string) *Counter {
	return metric(s, n, func(r *Registry) map[string]*Counter { return r.counters }, func() *Counter { return new(Counter) })
}

// metric returns the metric n of the kind that in selects from the
// registry, creating it with mk (and recording its tree path) on first
// use. Lookups of existing metrics take only the read lock. Outside a
// registry (the zero Scope) every call gets a fresh, unexported metric.
func metric[T any](s Scope, n string, in func(*Registry) map[string]*T, mk func() *T) *T {
	if s.r == nil {
		return mk()
	}
	k := s.prefix + n
	s.r.mu.RLock()
	v := in(s.r)[k]
	s.r.mu.RUnlock()
	if v != nil {
		return v
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	m := in(s.r)
	if v = m[k]; v == nil {
		v = mk()
		m[k] = v
		s.r.paths[k] = s.path(n)
	}
	return v
}

// Gauge registers (or replaces) gauge n, read by calling f at export time.
func (s Scope) Gauge(n string, f func() float64) {
	if s.r == nil {
		return
	}
	k := s.prefix + n
	s.r.mu.Lock()
	s.r.gauges[k] = f
	if _, ok := s.r.paths[k]; !ok {
		s.r.paths[k] = s.path(n)
	}
	s.r.mu.Unlock()
}

// RemoveGauge unregisters gauge n (when the thing it measures is closed).
func (s Scope) RemoveGauge(n string) {
	if s.r == nil {
		return
	}
	k := s.prefix + n
	s.r.mu.Lock()
	delete(s.r.gauges, k)
	if s.r.counters[k] == nil && s.r.stats[k] == nil && s.r.updowns[k] == nil {
		delete(s.r.paths, k)
	}
	s.r.mu.Unlock()
}

// UpDown returns the up-down counter n in this scope (exported as a
// gauge), creating it on first use. Unlike a Gauge function it is shared:
// every caller asking for n gets the same value, so a component that is
// rebuilt (a router cache entry evicted and re-created) keeps counting
// into it.
func (s Scope) UpDown(n string) *UpDown {
	return metric(s, n, func(r *Registry) map[string]*UpDown { return r.updowns }, func() *UpDown { return new(UpDown) })
}

// Stat returns the stat (histogram) n in this scope, creating it on first use.
func (s Scope) Stat(n string) *Stat {
	return metric(s, n, func(r *Registry) map[string]*Stat { return r.stats }, NewStat)
}

// Kind tells what a metric is, for exporters.
type Kind uint8

// Metric kinds.
const (
	KindCounter Kind = iota
	KindGauge
	KindStat
)

// Metric is one metric as exporters see it.
type Metric struct {
	Name    string // full slash-separated name
	Kind    Kind
	Counter *Counter
	Gauge   func() float64
	Stat    *Stat
	// Path is the name as tree nodes: scope elements (which may contain
	// '/') followed by the metric name split on '/'.
	Path []string
	// Snapshot is the stat's summary of the last completed interval; nil
	// before the stat's first interval ends (exporters then omit it).
	Snapshot *Snapshot
}

// Each calls f for every metric, in name order. It first rolls the
// histograms if the interval has elapsed.
func (r *Registry) Each(f func(Metric)) {
	snaps := r.maybeRoll()
	r.mu.RLock()
	ms := make([]Metric, 0, len(r.counters)+len(r.gauges)+len(r.stats)+len(r.updowns))
	for k, c := range r.counters {
		ms = append(ms, Metric{Name: k, Kind: KindCounter, Counter: c, Path: r.paths[k]})
	}
	for k, g := range r.gauges {
		ms = append(ms, Metric{Name: k, Kind: KindGauge, Gauge: g, Path: r.paths[k]})
	}
	for k, s := range r.stats {
		ms = append(ms, Metric{Name: k, Kind: KindStat, Stat: s, Path: r.paths[k], Snapshot: snaps[k]})
	}
	for k, u := range r.updowns {
		if _, dup := r.gauges[k]; !dup {
			ms = append(ms, Metric{Name: k, Kind: KindGauge, Gauge: u.float, Path: r.paths[k]})
		}
	}
	r.mu.RUnlock()
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].Name != ms[j].Name {
			return ms[i].Name < ms[j].Name
		}
		return ms[i].Kind < ms[j].Kind
	})
	for _, m := range ms {
		f(m)
	}
}

// Counter is a monotonically increasing count.
type Counter struct{ n atomic.Int64 }

// Inc adds one.
func (c *Counter) Inc() { c.n.Add(1) }

// Add adds d.
func (c *Counter) Add(d int64) { c.n.Add(d) }

// Value returns the count.
func (c *Counter) Value() int64 { return c.n.Load() }

// UpDown is a count that goes up and down (in-flight requests, open
// connections), exported as a gauge.
type UpDown struct{ n atomic.Int64 }

// Add adds d (negative to decrease).
func (u *UpDown) Add(d int64) { u.n.Add(d) }

// Value returns the current count.
func (u *UpDown) Value() int64 { return u.n.Load() }

func (u *UpDown) float() float64 { return float64(u.n.Load()) }

// SplitName splits a full metric name into its elements.
func SplitName(n string) []string { return strings.Split(n, "/") }
