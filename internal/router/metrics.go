package router

import (
	"context"
	"errors"
	"net/http"

	"github.com/linnet-mesh/linnet/internal/balancer"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// routerMetrics registers the router-wide gauges (rt/<label>/bindcache/...).
type routerMetrics struct{}

func newRouterMetrics(s telemetry.Scope, r *Router) routerMetrics {
	bc := s.Scope("bindcache")
	for _, t := range []struct {
		name string
		size func() int
		m, e *int64counter
	}{
		{"path", r.paths.len, r.paths.misses, r.paths.evicts},
		{"bound", r.bounds.len, r.bounds.misses, r.bounds.evicts},
		{"client", r.clients.len, r.clients.misses, r.clients.evicts},
	} {
		sc := bc.Scope(t.name)
		size, m, e := t.size, t.m, t.e
		sc.Gauge("size", func() float64 { return float64(size()) })
		sc.Gauge("misses", func() float64 { return float64(m.n.Load()) })
		sc.Gauge("evicts", func() float64 { return float64(e.n.Load()) })
	}
	return routerMetrics{}
}

// FailureKind classifies a failed request for failures/<kind>.
func FailureKind(err error) telemetry.FailureKind {
	var (
		nr *NoRouteError
		bt *BindingTimeoutError
		ce *ConnectError
	)
	switch {
	case errors.As(err, &nr):
		if nr.Bound != nil {
			return telemetry.FailureNoEndpoints
		}
		return telemetry.FailureNoRoute
	case errors.Is(err, balancer.ErrNoEndpoints):
		return telemetry.FailureNoEndpoints
	case errors.As(err, &bt):
		return telemetry.FailureBindTimeout
	case errors.As(err, &ce):
		return telemetry.FailureConnect
	case errors.Is(err, context.DeadlineExceeded):
		return telemetry.FailureTimeout
	case errors.Is(err, context.Canceled):
		return telemetry.FailureCancelled
	}
	var k interface{ FailureKind() telemetry.FailureKind }
	if errors.As(err, &k) {
		return k.FailureKind()
	}
	return telemetry.FailureUnknown
}

// Outcome turns a round trip's result into the status and failure kind
// telemetry.RequestStats records.
func Outcome(req *http.Request, resp *http.Response, err error, classify Classifier) (int, telemetry.FailureKind) {
	if err != nil {
		return 0, FailureKind(err)
	}
	if classify(req, resp, nil) {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, telemetry.FailureClassified
}

// serviceStats is the path tier's stats module.
func (r *Router) serviceStats(p *pathEntry) Middleware {
	st := telemetry.NewRequestStats(telemetry.ServiceScope(r.p.Scope, p.nameStr))
	p.stats = st
	return statsModule(st, p.success)
}

// clientStats is the bound tier's stats module.
func (r *Router) clientStats(b *boundEntry) Middleware {
	st := telemetry.NewRequestStats(telemetry.ClientScope(r.p.Scope, b.id))
	b.stats = st
	return statsModule(st, DefaultClassifier)
}

func statsModule(st *telemetry.RequestStats, classify Classifier) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			t0 := st.Start()
			resp, err := next.RoundTrip(req)
			status, kind := Outcome(req, resp, err, classify)
			st.End(t0, status, kind)
			return resp, err
		})
	}
}
