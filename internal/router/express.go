package router

import (
	"net/http"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// The express lane (docs/performance.md, "Fifth pass") serves plain
// requests without the tiers' middleware: the edge writes the request
// from its raw head and reads the response itself, and the router only
// routes it and records it. Express and the ExpressAttempt it returns do
// here, in one place, what the path, bound and client tiers' modules do
// for such a request, in the same order and into the same metrics,
// budgets and balancer. A request the lane cannot take, it never
// touches: the full stack serves it.

// Express reports whether requests to name (with no local dtab) may take
// the express lane now: the name is bound and ready, and its service
// policy needs nothing the lane does not do (no total timeout, retries
// sent without backoff). The caller then calls Attempt. now is the
// caller's clock.Mono reading, shared with the caches' clock.
func (r *Router) Express(name dtab.Path, now int64) (*ExpressRoute, bool) {
	select {
	case <-r.stop:
		return nil, false
	default:
	}
	var buf [128]byte
	p := r.paths.getBytes(appendPathKey(buf[:0], Dst{Path: name}), coarse(now))
	p.init(Dst{Path: name})
	if !p.express {
		return nil, false
	}
	select {
	case <-p.ready:
	default:
		return nil, false
	}
	return (*ExpressRoute)(p), true
}

// ExpressRoute is a logical name's path entry seen by the express lane.
type ExpressRoute pathEntry

// Begin starts one request: the service stats count it in flight and the
// retry budget gets its deposit, as the path tier's modules do.
func (e *ExpressRoute) Begin(now int64) (t0 int64) {
	p := (*pathEntry)(e)
	if p.policy.Express.Valid() {
		p.policy.Express.Begin(now) // retries have no per-request limit
	}
	return p.stats.StartAt(now)
}

// End records the request as the service stats and the retry module
// would: status and classification of the final response (resp nil with
// err for a failure), and the number of retries it took.
func (e *ExpressRoute) End(t0, now int64, req *http.Request, resp *http.Response, err error, retries int) {
	p := (*pathEntry)(e)
	status, kind := Outcome(req, resp, err, p.success)
	p.stats.EndAt(t0, now, status, kind)
	if p.policy.Express.Valid() {
		p.policy.Express.End(retries)
	}
}

// Classify sets l5d-success-class and l5d-retryable on resp as the
// Classify module does, and reports the classification (Retryable: the
// full stack would retry it, budget permitting).
func (e *ExpressRoute) Classify(req *http.Request, resp *http.Response) middleware.Class {
	return middleware.ClassifyResponse((*pathEntry)(e).policy.Classifier, req, resp)
}

// RetryableError reports whether the retry module would retry an attempt
// that failed with err: one never written, or one the service's
// classifier calls retryable.
func (e *ExpressRoute) RetryableError(req *http.Request, err error) bool {
	if middleware.IsNotWritten(err) {
		return true
	}
	c := (*pathEntry)(e).policy.Classifier.Classify(req, nil, err)
	return !c.Success && c.Retryable
}

// Retry asks the service's retry budget for one more attempt.
func (e *ExpressRoute) Retry() bool {
	p := (*pathEntry)(e)
	return p.policy.Express.Valid() && p.policy.Express.Retry(0, -1)
}

// DstService is the l5d-dst-service value of the name.
func (e *ExpressRoute) DstService() string { return (*pathEntry)(e).nameStr }

// Attempt picks a bound name and an endpoint for one attempt, as the path
// tier and the balancer do, or reports false (nothing picked) when the
// bound name or its addresses are not ready, it has no endpoint, or its
// client policy needs the full stack (a per-attempt timeout). now is the
// caller's clock.Mono reading.
func (e *ExpressRoute) Attempt(now int64) (*ExpressAttempt, bool) {
	p := (*pathEntry)(e)
	a := p.tree.Load()
	if a == nil || a.State != watch.Ok {
		return nil, false
	}
	b, _ := pick(a.Value)
	if b == nil {
		return nil, false
	}
	key, ok := p.keys.Load(b)
	if !ok {
		key = b.ID.String()
		p.keys.Store(b, key)
	}
	be := p.r.bounds.get(key.(string), coarse(now))
	be.init(b)
	if !be.express {
		return nil, false
	}
	select {
	case <-be.ready:
	default:
		return nil, false
	}
	if ad := be.addr.Load(); ad == nil || ad.State != naming.AddrBound {
		return nil, false
	}
	ep, done, err := be.bal.Pick()
	if err != nil {
		return nil, false
	}
	c := p.r.clients.get(ep.Key, coarse(now))
	c.init()
	at := &ExpressAttempt{Transport: c.transport, Addr: ep.Key, DstClient: be.id, p: p, b: be, done: done}
	if len(b.Residual) > 0 {
		at.DstResidual = b.Residual.String()
	}
	if h, ok := ep.Meta[MetaAuthority].(string); ok {
		at.Host = h
	}
	return at, true
}

// ExpressAttempt is one attempt of the express lane: where to send it,
// what the tiers would have written on it, and its bookkeeping.
type ExpressAttempt struct {
	// Transport is the endpoint's client-tier transport, Addr its
	// host:port.
	Transport Transport
	Addr      string
	// Host, when set, replaces the caller's Host (the endpoint's
	// authority metadata).
	Host string
	// DstClient and DstResidual are l5d-dst-client and, when not empty,
	// l5d-dst-residual.
	DstClient, DstResidual string

	p        *pathEntry
	b        *boundEntry
	cs       *telemetry.RequestStats
	done     func(bool)
	tcs, tcl int64
	// requeues is how many times the attempt was requeued, of at most
	// requeueLimit (-1: no limit but the budget).
	requeues, requeueLimit int
}

func noDone(bool) {}

// Requeue picks another endpoint of the same bound name for an attempt
// whose request could not be written (its connection failed), as the
// requeue module does: the failed endpoint is charged, the requeue budget
// asked. It reports false, with nothing picked, when the budget refuses
// or no endpoint is left; the caller then answers the connection error.
func (a *ExpressAttempt) Requeue() bool {
	a.done(true)
	a.done = noDone
	rq := a.b.policy.RequeueExpress
	if !rq.Valid() || !rq.Retry(a.requeues, a.requeueLimit) {
		return false
	}
	ep, done, err := a.b.bal.Pick()
	if err != nil {
		return false
	}
	c := a.p.r.clients.get(ep.Key, coarseNow())
	c.init()
	a.Transport, a.Addr, a.done = c.transport, ep.Key, done
	a.Host = ""
	if h, ok := ep.Meta[MetaAuthority].(string); ok {
		a.Host = h
	}
	a.requeues++
	return true
}

// ConnectError is the error the full stack answers for a connection to
// the attempt's endpoint that could not be made.
func (a *ExpressAttempt) ConnectError(err error) error {
	if !isDialError(err) {
		return err
	}
	return &ConnectError{Addr: a.Addr, Bound: a.b.idPath, Err: err}
}

// Start counts the attempt in flight in the client × service and client
// stats, and the requeue budget's deposit, as the bound tier's modules
// do when the attempt is sent.
func (a *ExpressAttempt) Start(now int64) {
	a.cs = a.p.clientServiceStats(a.b)
	a.tcs = a.cs.StartAt(now)
	a.tcl = a.b.stats.StartAt(now)
	a.requeueLimit = -1
	if a.b.policy.RequeueExpress.Valid() {
		a.requeueLimit = a.b.policy.RequeueExpress.Begin(now)
	}
}

// Unsent gives the attempt up before its request was written (the
// connection could not be made): the endpoint is charged with a failure,
// as the balancer is told by the full stack, and nothing else is counted;
// the caller then sends the request through the full stack.
func (a *ExpressAttempt) Unsent() {
	a.cs.Abandon()
	a.b.stats.Abandon()
	a.done(true)
}

// End records the attempt's outcome in the client × service and client
// stats, and the requeue module's count (none).
func (a *ExpressAttempt) End(now int64, req *http.Request, resp *http.Response, err error) {
	status, kind := Outcome(req, resp, err, a.p.success)
	a.cs.EndAt(a.tcs, now, status, kind)
	status, kind = Outcome(req, resp, err, DefaultClassifier)
	a.b.stats.EndAt(a.tcl, now, status, kind)
	if a.b.policy.RequeueExpress.Valid() {
		a.b.policy.RequeueExpress.End(a.requeues)
	}
}

// Done reports the attempt's outcome to the balancer: at once for a
// failure or a response without a body, else when the body ends (the
// body reports it, router.BodyEndHook), as the balance step does.
func (a *ExpressAttempt) Done(resp *http.Response, err error) {
	if err != nil {
		a.done(true)
		return
	}
	failed := resp.StatusCode >= 500
	if resp.Body == nil || resp.Body == http.NoBody {
		a.done(failed)
		return
	}
	if h, ok := resp.Body.(BodyEndHook); ok && h.OnEnd(a.done, failed) {
		return
	}
	resp.Body = &doneBody{rc: resp.Body, done: a.done, failed: failed}
}

// below500Succeeds probes c: true when a GET answered with any of a range
// of statuses below 500, with no l5d-* field, is a success that is not
// retryable (every classifier Linnet has; a custom one might differ).
func below500Succeeds(c middleware.Classifier) bool {
	req := &http.Request{Method: http.MethodGet, Header: http.Header{}}
	for _, code := range []int{200, 201, 204, 301, 302, 304, 400, 403, 404, 409, 429, 499} {
		cl := c.Classify(req, &http.Response{StatusCode: code, Header: http.Header{}}, nil)
		if !cl.Success || cl.Retryable {
			return false
		}
	}
	return true
}

// RelaysBelow500 reports whether the lane may relay a response with a
// status below 500 as a success without classifying it (EndStatus).
func (e *ExpressRoute) RelaysBelow500() bool { return (*pathEntry)(e).relayBelow500 }

// EndStatus is End for a successful response of status (below 500, on a
// route that RelaysBelow500), which the lane relays without building it.
func (e *ExpressRoute) EndStatus(t0, now int64, status, retries int) {
	p := (*pathEntry)(e)
	p.stats.EndAt(t0, now, status, "")
	if p.policy.Express.Valid() {
		p.policy.Express.End(retries)
	}
}

// EndStatus is End for a successful response of status (below 500),
// relayed without building it.
func (a *ExpressAttempt) EndStatus(now int64, status int) {
	a.cs.EndAt(a.tcs, now, status, "")
	a.b.stats.EndAt(a.tcl, now, status, "")
	if a.b.policy.RequeueExpress.Valid() {
		a.b.policy.RequeueExpress.End(a.requeues)
	}
}

// Finish reports to the balancer the end of a relayed response's body:
// failed when it broke off (Done does this for a built response).
func (a *ExpressAttempt) Finish(failed bool) { a.done(failed) }
