package routerd

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/linnet-mesh/linnet/internal/balancer"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/proxy/http1"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// policies turns a router's `client:` and `service:` blocks into the
// router's per-name policies. The keys every protocol shares (retries,
// timeouts, balancer, failure accrual, requeues) are read through
// clientFor and serviceFor, so http and h2 routers share this code.
type policies struct {
	// clientFor returns the client keys of a bound name.
	clientFor func(id dtab.Path) ClientParams
	// serviceFor returns the service keys of a logical name and its
	// response classifier (the protocol's default one, with the error,
	// when the configured one is rejected).
	serviceFor func(name dtab.Path) (ServiceParams, middleware.Classifier, error)
	// pool is the global client's hostConnectionPool (http only).
	pool HostConnectionPool
	// tlsFor, when set, chooses the client TLS of each request (http
	// only; see tls.go).
	tlsFor func(*http.Request) (*tls.Config, error)
	// wrapConn, when set, wraps the connections to each endpoint
	// (connection metrics; see telemetry.go).
	wrapConn func(addr string) func(net.Conn) net.Conn
	scope    telemetry.Scope
	log      func(msg string, args ...any)
}

func newPolicies(hr *HTTPRouter, scope telemetry.Scope, warn func(string, ...any)) *policies {
	return &policies{
		clientFor: func(id dtab.Path) ClientParams { return hr.Client.For(id).ClientParams },
		serviceFor: func(name dtab.Path) (ServiceParams, middleware.Classifier, error) {
			sp := hr.Service.For(name)
			c, err := middleware.NewClassifier(sp.ResponseClassifier.Kind)
			if err != nil {
				c, _ = middleware.NewClassifier("")
			}
			return sp.ServiceParams, c, err
		},
		pool:  hr.Client.Global.HostConnectionPool,
		scope: scope, log: warn,
	}
}

// service returns the policy of one logical name: classifier, total
// timeout and retries (budget per logical name, as in Linkerd).
func (p *policies) service(name dtab.Path) router.ServicePolicy {
	sp, c, err := p.serviceFor(name)
	out := router.ServicePolicy{TotalTimeout: time.Duration(sp.TotalTimeoutMs) * time.Millisecond}
	if err != nil {
		p.log("response classifier rejected; using the default", "service", name.String(), "err", err)
	}
	out.Classifier = c
	rb := sp.Retries.Budget
	ro := middleware.RetryOptions{Budget: middleware.BudgetOptions{
		TTLSecs: &rb.TTLSecs, MinRetriesPerSec: &rb.MinRetriesPerSec, PercentCanRetry: &rb.PercentCanRetry,
	}}
	if bo := sp.Retries.Backoff; bo.Kind != "" {
		ro.Backoff = &backoff.Options{Kind: bo.Kind, Ms: bo.Ms, MinMs: bo.MinMs, MaxMs: bo.MaxMs}
	}
	retries, err := middleware.Retry(ro, c, telemetry.ServiceScope(p.scope, name.String()))
	if err != nil {
		p.log("retries settings rejected; retries off", "service", name.String(), "err", err)
	} else {
		out.Retries = retries
	}
	return out
}

// client returns the policy of one bound name.
func (p *policies) client(id dtab.Path) router.ClientPolicy {
	cp := p.clientFor(id)
	scope := telemetry.ClientScope(p.scope, id.String())
	lb := cp.LoadBalancer
	fa := cp.FailureAccrual
	opts := balancer.Options{
		Kind:            lb.Kind,
		MaxEffort:       lb.MaxEffort,
		DecayTimeMs:     lb.DecayTimeMs,
		SmoothWindowMs:  lb.SmoothWindowMs,
		LowLoad:         lb.LowLoad,
		HighLoad:        lb.HighLoad,
		MinAperture:     lb.MinAperture,
		EnableProbation: lb.EnableProbation,
		FailureAccrual: balancer.AccrualOptions{
			Kind:        fa.Kind,
			Failures:    fa.Failures,
			SuccessRate: fa.SuccessRate,
			Requests:    fa.Requests,
			Window:      fa.Window,
		},
	}
	if fa.Backoff.Kind != "" {
		opts.FailureAccrual.Backoff = &backoff.Options{Kind: fa.Backoff.Kind, Ms: fa.Backoff.Ms, MinMs: fa.Backoff.MinMs, MaxMs: fa.Backoff.MaxMs}
	}
	qb := cp.RequeueBudget
	requeue, err := middleware.Requeue(middleware.BudgetOptions{
		TTLSecs: &qb.TTLSecs, MinRetriesPerSec: &qb.MinRetriesPerSec, PercentCanRetry: &qb.PercentCanRetry,
	}, scope)
	if err != nil {
		p.log("requeueBudget rejected; requeues off", "client", id.String(), "err", err)
	}
	return router.ClientPolicy{
		AttemptTimeout: time.Duration(cp.RequestAttemptTimeoutMs) * time.Millisecond,
		Requeue:        requeue,
		NewBalancer: func() balancer.Balancer {
			b, err := balancer.New(opts, scope)
			if err != nil {
				// Loading validated the block; fall back to the router's
				// own balancer rather than fail every request.
				p.log("client load balancer settings rejected; using p2c", "client", id.String(), "err", err)
				return nil
			}
			return b
		},
	}
}

// transport returns the client-tier transport of one endpoint. An
// endpoint's connections are shared by every bound name that includes
// it, so the pool settings come from the global client block.
func (p *policies) transport(addr string) router.Transport {
	pool := p.pool
	o := http1.TransportOptions{
		IdleTimeout: time.Duration(pool.IdleTimeMs) * time.Millisecond,
		MaxConns:    pool.MaxSize,
		MaxWaiters:  pool.MaxWaiters,
	}
	if p.wrapConn != nil {
		o.WrapConn = p.wrapConn(addr)
	}
	if p.tlsFor != nil {
		return http1.NewTLSClient(addr, o, p.tlsFor)
	}
	return http1.NewClient(addr, o)
}
