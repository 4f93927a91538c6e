// Package telemetry is the metrics tree every component records into: a
// Registry of counters, gauges and stats (histograms) addressed by scoped
// names that follow Linkerd 1's tree (rt/<router>/server/..., namer/...).
// Constructors take a Scope; nothing registers globals. Recording on the hot
// path (Counter.Inc, Stat.Add) does not allocate. Exporters (metrics.json,
// Prometheus) walk the registry with Each.
package telemetry

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds every metric of one process.
type Registry struct {
	mu       sync.RWMutex
	counters map[string]*Counter
	gauges   map[string]func() float64
	stats    map[string]*Stat
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		counters: map[string]*Counter{},
		gauges:   map[string]func() float64{},
		stats:    map[string]*Stat{},
	}
}

// Scope is a position in the metrics tree. The zero Scope discards nothing
// but records into a private registry nobody reads; use Registry.Scope.
type Scope struct {
	r      *Registry
	prefix string // "" or "a/b/" (always ends with '/')
}

// Scope returns the root scope of r.
func (r *Registry) Scope() Scope { return Scope{r: r} }

// Scope returns the child scope named by the elements, e.g.
// s.Scope("rt", "incoming", "server") for rt/incoming/server/.
func (s Scope) Scope(names ...string) Scope {
	if s.r == nil {
		s.r = NewRegistry()
	}
	p := s.prefix
	for _, n := range names {
		p += n + "/"
	}
	return Scope{r: s.r, prefix: p}
}

// Name returns the full name of metric n in this scope.
func (s Scope) Name(n string) string { return s.prefix + n }

// Counter returns the counter n in this scope, creating it on first use.
func (s Scope) Counter(n string) *Counter {
	if s.r == nil {
		return new(Counter)
	}
	k := s.prefix + n
	s.r.mu.RLock()
	c := s.r.counters[k]
	s.r.mu.RUnlock()
	if c != nil {
		return c
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if c = s.r.counters[k]; c == nil {
		c = new(Counter)
		s.r.counters[k] = c
	}
	return c
}

// Gauge registers (or replaces) gauge n, read by calling f at export time.
func (s Scope) Gauge(n string, f func() float64) {
	if s.r == nil {
		return
	}
	s.r.mu.Lock()
	s.r.gauges[s.prefix+n] = f
	s.r.mu.Unlock()
}

// RemoveGauge unregisters gauge n (when the thing it measures is closed).
func (s Scope) RemoveGauge(n string) {
	if s.r == nil {
		return
	}
	s.r.mu.Lock()
	delete(s.r.gauges, s.prefix+n)
	s.r.mu.Unlock()
}

// Stat returns the stat (histogram) n in this scope, creating it on first use.
func (s Scope) Stat(n string) *Stat {
	if s.r == nil {
		return NewStat()
	}
	k := s.prefix + n
	s.r.mu.RLock()
	st := s.r.stats[k]
	s.r.mu.RUnlock()
	if st != nil {
		return st
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if st = s.r.stats[k]; st == nil {
		st = NewStat()
		s.r.stats[k] = st
	}
	return st
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
}

// Each calls f for every metric, in name order.
func (r *Registry) Each(f func(Metric)) {
	r.mu.RLock()
	ms := make([]Metric, 0, len(r.counters)+len(r.gauges)+len(r.stats))
	for k, c := range r.counters {
		ms = append(ms, Metric{Name: k, Kind: KindCounter, Counter: c})
	}
	for k, g := range r.gauges {
		ms = append(ms, Metric{Name: k, Kind: KindGauge, Gauge: g})
	}
	for k, s := range r.stats {
		ms = append(ms, Metric{Name: k, Kind: KindStat, Stat: s})
	}
	r.mu.RUnlock()
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
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

// SplitName splits a full metric name into its elements.
func SplitName(n string) []string { return strings.Split(n, "/") }
