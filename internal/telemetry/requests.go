package telemetry

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/clock"
)

// RequestStats records Linkerd's per-scope request metrics (requests,
// success, failures, failures/<kind>, pending, request_latency_ms and, for
// HTTP, status/<code>, status/<N>XX, status/error, time/<N>XX, time/error)
// for one server, service, client or client×service scope. Every metric is
// resolved once, so Start and End do not allocate or take locks on the hot
// path.
//
//	st := telemetry.NewRequestStats(telemetry.ServiceScope(rt, "/svc/hello"))
//	t0 := st.Start()
//	... forward ...
//	st.End(t0, resp.StatusCode, "")                       // success
//	st.End(t0, 0, telemetry.FailureConnect)              // no response
//	st.End(t0, 503, telemetry.FailureClassified)         // response, classified as failure
type RequestStats struct {
	scope    Scope
	requests *Counter
	success  *Counter
	failures *Counter
	latency  *Stat
	pending  *UpDown

	// HTTP metrics, created on first use (as in Linkerd, a status class
	// that never occurred is absent).
	statusErr lazy[Counter]
	timeErr   lazy[Stat]
	class     [5]lazy[Counter]   // status/1XX .. status/5XX
	classTime [5]lazy[Stat]      // time/1XX .. time/5XX
	codes     [500]lazy[Counter] // status/100 .. status/599

	kindsMu sync.Mutex
	kinds   atomic.Pointer[map[FailureKind]*Counter] // copy-on-write
}

// NewRequestStats creates the metrics of s. Two RequestStats of the same
// scope share every metric.
func NewRequestStats(s Scope) *RequestStats {
	st := &RequestStats{
		scope:    s,
		requests: s.Counter(Requests),
		success:  s.Counter(Success),
		failures: s.Counter(Failures),
		latency:  s.Stat(RequestLatency),
		pending:  s.UpDown(Pending),
	}
	m := map[FailureKind]*Counter{}
	st.kinds.Store(&m)
	return st
}

// Start counts a request in flight and returns its start, a clock.Mono
// reading.
func (st *RequestStats) Start() int64 {
	st.pending.Add(1)
	return clock.Mono()
}

// End records a finished request started at t0. status is the HTTP
// status code, or 0 when there was no response. failure is "" for a
// success, otherwise the reason it counts as a failure.
func (st *RequestStats) End(t0 int64, status int, failure FailureKind) {
	st.pending.Add(-1)
	st.Observe(clock.Since(t0), status, failure)
}

// StartAt is Start for a caller that read the clock (clock.Mono) itself,
// to share one reading among several scopes.
func (st *RequestStats) StartAt(now int64) int64 {
	st.pending.Add(1)
	return now
}

// EndAt is End with the caller's clock.Mono reading.
func (st *RequestStats) EndAt(t0, now int64, status int, failure FailureKind) {
	st.pending.Add(-1)
	st.Observe(time.Duration(now-t0), status, failure)
}

// Abandon undoes Start for a request that was not sent after all (the
// caller sends it another way, which counts it): only the in-flight gauge
// changes.
func (st *RequestStats) Abandon() { st.pending.Add(-1) }

// Observe records a finished request that took d, without touching the
// pending gauge (for callers that track in-flight requests themselves).
func (st *RequestStats) Observe(d time.Duration, status int, failure FailureKind) {
	ms := d.Milliseconds()
	st.requests.Inc()
	st.latency.Add(ms)
	if failure == "" {
		st.success.Inc()
	} else {
		st.failures.Inc()
		st.kind(failure).Inc()
	}
	if status >= 100 && status <= 599 {
		cls := status/100 - 1
		st.counter(&st.class[cls], classNames[cls][0]).Inc()
		st.stat(&st.classTime[cls], classNames[cls][1]).Add(ms)
		code := &st.codes[status-100]
		c := code.Load()
		if c == nil {
			c = st.scope.Counter(StatusPrefix + "/" + strconv.Itoa(status))
			code.Store(c)
		}
		c.Inc()
	} else {
		st.counter(&st.statusErr, statusErrorName).Inc()
		st.stat(&st.timeErr, timeErrorName).Add(ms)
	}
}

// Pending returns the number of requests in flight.
func (st *RequestStats) Pending() int64 { return st.pending.Value() }

// Close is a no-op kept for symmetry: as in Linkerd, a scope's metrics
// outlive the component that recorded them, and a RequestStats made again
// for the same scope continues them (pending included).
func (st *RequestStats) Close() {}

// classNames are the status/<N>XX and time/<N>XX names, built once.
var classNames = func() (out [5][2]string) {
	for i := range out {
		c := strconv.Itoa(i+1) + "XX"
		out[i] = [2]string{StatusPrefix + "/" + c, TimePrefix + "/" + c}
	}
	return out
}()

const (
	statusErrorName = StatusPrefix + "/" + StatusError
	timeErrorName   = TimePrefix + "/" + StatusError
)

// lazy is a metric created on first use. Racing creators get the same
// metric from the registry, so which Store wins does not matter.
type lazy[T any] = atomic.Pointer[T]

func (st *RequestStats) counter(l *lazy[Counter], name string) *Counter {
	if c := l.Load(); c != nil {
		return c
	}
	c := st.scope.Counter(name)
	l.Store(c)
	return c
}

func (st *RequestStats) stat(l *lazy[Stat], name string) *Stat {
	if s := l.Load(); s != nil {
		return s
	}
	s := st.scope.Stat(name)
	l.Store(s)
	return s
}

func (st *RequestStats) kind(k FailureKind) *Counter {
	if c := (*st.kinds.Load())[k]; c != nil {
		return c
	}
	st.kindsMu.Lock()
	defer st.kindsMu.Unlock()
	old := *st.kinds.Load()
	if c := old[k]; c != nil {
		return c
	}
	c := st.scope.Counter(Failures + "/" + string(k))
	m := make(map[FailureKind]*Counter, len(old)+1)
	for kk, v := range old {
		m[kk] = v
	}
	m[k] = c
	st.kinds.Store(&m)
	return c
}
