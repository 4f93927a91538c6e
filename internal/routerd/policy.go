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
	"github.com/linnet-mesh/linnet/internal/proxy"
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
	// session is the global client's clientSession (http only; nil if
	// unset).
	session *SessionConf
	// tlsFor, when set, chooses the client TLS of each request (http
	// only; see tls.go).
	tlsFor func(*http.Request) (*tls.Config, error)
	// xfccRules, when set, are the io.l5d.static entries that decide per
	// bound name whether requests carry x-forwarded-client-cert (see
	// xfccTransport).
	xfccRules []xfccRule
	// wrapConn, when set, wraps the connections to each endpoint
	// (connection metrics; see telemetry.go).
	wrapConn func(addr string) func(net.Conn) net.Conn
	scope    telemetry.Scope
	log      func(msg string, args ...any)
}

func newPolicies(hr *HTTPRouter, scope telemetry.Scope, warn func(string, ...any)) *policies {
	p := &policies{
		clientFor: func(id dtab.Path) ClientParams { return hr.Client.For(id).ClientParams },
		serviceFor: func(name dtab.Path) (ServiceParams, middleware.Classifier, error) {
			sp := hr.Service.For(name)
			c, err := middleware.NewClassifier(sp.ResponseClassifier.Kind)
			if err != nil {
				c, _ = middleware.NewClassifier("")
			}
			return sp.ServiceParams, c, err
		},
		pool:    hr.Client.Global.HostConnectionPool,
		session: hr.Client.Global.ClientSession,
		scope:   scope, log: warn,
	}
	if mode, _ := forwardsClientCert(&hr.Client, hr.Client.Global.ForwardClientCert); mode == xfccByName {
		p.xfccRules = xfccRules(&hr.Client)
	}
	return p
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
	retries, express, err := middleware.NewRetry(ro, c, telemetry.ServiceScope(p.scope, name.String()))
	if err != nil {
		p.log("retries settings rejected; retries off", "service", name.String(), "err", err)
	} else {
		out.Retries, out.Express = retries, express
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
	requeue, requeueExpress, err := middleware.NewRequeue(middleware.BudgetOptions{
		TTLSecs: &qb.TTLSecs, MinRetriesPerSec: &qb.MinRetriesPerSec, PercentCanRetry: &qb.PercentCanRetry,
	}, scope)
	if err != nil {
		p.log("requeueBudget rejected; requeues off", "client", id.String(), "err", err)
	}
	return router.ClientPolicy{
		AttemptTimeout: time.Duration(cp.RequestAttemptTimeoutMs) * time.Millisecond,
		Requeue:        requeue,
		RequeueExpress: requeueExpress,
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
		IdleTimeout: clientIdleTime(pool.IdleTimeMs, p.session),
		MaxConns:    pool.MaxSize,
		MaxWaiters:  pool.MaxWaiters,
	}
	if s := p.session; s != nil {
		o.LifeTime = time.Duration(s.LifeTimeMs) * time.Millisecond
	}
	if p.wrapConn != nil {
		o.WrapConn = p.wrapConn(addr)
	}
	var t router.Transport
	if p.tlsFor != nil {
		t = http1.NewTLSClient(addr, o, p.tlsFor)
	} else {
		t = http1.NewClient(addr, o)
	}
	if p.xfccRules != nil {
		t = &xfccTransport{next: t, rules: p.xfccRules}
	}
	return t
}

// xfccTransport applies forwardClientCert per bound name: the server edge
// (proxy.ServerEdge.ClientCertByName) put the x-forwarded-client-cert
// value of the inbound connection aside, and each attempt gets it or not
// as the io.l5d.static entries matching its bound name (l5d-dst-client)
// say. It deliberately has no Base method: the express lane, which would
// write requests without it, cannot find the HTTP/1.1 client underneath
// (servers with an edge never take the lane anyway).
type xfccTransport struct {
	next  router.Transport
	rules []xfccRule
}

func (t *xfccTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	forward := false
	if id, err := dtab.ParsePath(r.Header.Get(proxy.HeaderDstClient)); err == nil {
		forward = forwardsFor(t.rules, id)
	}
	hdr, pending := proxy.ResolveClientCert(r, forward)
	if !pending {
		return t.next.RoundTrip(r)
	}
	// A RoundTripper must not change its request: r, and its header, are
	// sent again by a retry, perhaps to another bound name.
	r2 := *r
	r2.Header = hdr
	return t.next.RoundTrip(&r2)
}

func (t *xfccTransport) CloseIdleConnections() { t.next.CloseIdleConnections() }

// clientIdleTime is how long a pooled connection to an endpoint may stay
// idle (0: the transport's default). Linkerd has two such bounds: the
// pool's (hostConnectionPool.idleTimeMs, Finagle's watermark pool TTL for
// the connections it caches) and the session's (clientSession.idleTimeMs,
// Finagle's ExpiringService, which closes any connection left idle that
// long, cached or not). Both close an idle connection, so whichever is
// shorter closes it first: the smaller wins when both are set.
func clientIdleTime(poolMs int, session *SessionConf) time.Duration {
	ms := poolMs
	if session != nil && session.IdleTimeMs > 0 && (ms <= 0 || session.IdleTimeMs < ms) {
		ms = session.IdleTimeMs
	}
	return time.Duration(ms) * time.Millisecond
}

// serverSession returns a server's idle timeout (deflt when
// serverSession.idleTimeMs is unset) and lifetime (0: unbounded).
func serverSession(s *SessionConf, deflt time.Duration) (idle, life time.Duration) {
	idle = deflt
	if s == nil {
		return idle, 0
	}
	if s.IdleTimeMs > 0 {
		idle = time.Duration(s.IdleTimeMs) * time.Millisecond
	}
	return idle, time.Duration(s.LifeTimeMs) * time.Millisecond
}
