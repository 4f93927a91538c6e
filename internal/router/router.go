package router

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/balancer"
	"github.com/linnet-mesh/linnet/internal/clock"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Canonical names of the headers the router writes (l5d-* headers are not
// in Go's canonical case on the wire, but net/http canonicalises keys).
const (
	hdrDstService  = "L5d-Dst-Service"
	hdrDstClient   = "L5d-Dst-Client"
	hdrDstResidual = "L5d-Dst-Residual"
)

// MetaAuthority is the address metadata key whose value, when set,
// replaces the Host of requests sent to that address (headers-admin.md
// §1 outbound table).
const MetaAuthority = "authority"

// Params configures a Router. Zero values take Linkerd's defaults.
type Params struct {
	// Label is the router's label (rt/<label>/...).
	Label string
	// Dtab is the router's base dtab; a request's local dtab is appended.
	Dtab dtab.Dtab
	// Interpreter binds names.
	Interpreter naming.Interpreter
	// BindingTimeout bounds how long a request waits for a name (and its
	// addresses) to resolve. Default 10s.
	BindingTimeout time.Duration
	// IdleTTL closes path, bound and client entries unused for this long.
	// Default 600s (bindingCache.idleTtlSecs).
	IdleTTL time.Duration
	// Scope is the router's metrics scope, rt/<label>.
	Scope telemetry.Scope
	// Service returns the policy of a logical name (may be nil).
	Service func(name dtab.Path) ServicePolicy
	// Client returns the policy of a bound name (may be nil).
	Client func(id dtab.Path) ClientPolicy
	// NewTransport returns the transport of one endpoint ("host:port").
	// It is called once per client-tier entry. Required.
	NewTransport func(addr string) Transport
}

// Transport is a client-tier transport: a RoundTripper whose idle
// connections can be closed when the entry is evicted.
type Transport interface {
	http.RoundTripper
	CloseIdleConnections()
}

// ServicePolicy is the per-logical-name policy (Linkerd's `service:`).
type ServicePolicy struct {
	// TotalTimeout bounds the whole request including retries (0: none).
	TotalTimeout time.Duration
	// Classifier is the response classifier; nil means
	// io.l5d.http.nonRetryable5XX.
	Classifier middleware.Classifier
	// Retries, when set, wraps the rest of the path stack
	// (middleware.Retry with the same classifier).
	Retries Middleware
	// Express is Retries' budget and counts for the express lane
	// (middleware.NewRetry); without it, a route with Retries never takes
	// the lane.
	Express middleware.Express
}

// ClientPolicy is the per-bound-name policy (Linkerd's `client:`).
type ClientPolicy struct {
	// AttemptTimeout bounds one attempt (0: none).
	AttemptTimeout time.Duration
	// Requeue, when set, resends requests that were never written
	// (middleware.Requeue).
	Requeue Middleware
	// RequeueExpress is Requeue's budget and counts for the express lane
	// (middleware.NewRequeue); without it, a bound name with Requeue
	// never takes the lane.
	RequeueExpress middleware.Express
	// NewBalancer builds the balancer; nil means p2c least-loaded.
	NewBalancer func() balancer.Balancer
}

// Classifier says whether a response (or error) is a success.
type Classifier func(req *http.Request, resp *http.Response, err error) bool

// DefaultClassifier is io.l5d.http.nonRetryable5XX's notion of success.
func DefaultClassifier(_ *http.Request, resp *http.Response, err error) bool {
	return err == nil && resp.StatusCode < 500
}

// defaultClassifier is io.l5d.http.nonRetryable5XX.
var defaultClassifier, _ = middleware.NewClassifier("")

// successOf turns a response classifier into a success test.
func successOf(c middleware.Classifier) Classifier {
	return func(req *http.Request, resp *http.Response, err error) bool {
		return c.Classify(req, resp, err).Success
	}
}

// Dst is what the edge hands the router for one request.
type Dst struct {
	// Path is the logical name, e.g. /svc/hello.
	Path dtab.Path
	// Local is the request's local dtab (l5d-ctx-dtab ++ l5d-dtab).
	Local dtab.Dtab
}

// Router routes requests through its path, bound and client tiers.
type Router struct {
	p       Params
	paths   *cache[*pathEntry]
	bounds  *cache[*boundEntry]
	clients *cache[*clientEntry]
	metrics routerMetrics

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// New returns a router. Close releases its watches and connections.
func New(p Params) *Router {
	if p.BindingTimeout <= 0 {
		p.BindingTimeout = 10 * time.Second
	}
	if p.IdleTTL <= 0 {
		p.IdleTTL = 600 * time.Second
	}
	r := &Router{p: p, stop: make(chan struct{})}
	r.paths = newCache(p.IdleTTL, r.newPathEntry)
	r.bounds = newCache(p.IdleTTL, r.newBoundEntry)
	r.clients = newCache(p.IdleTTL, r.newClientEntry)
	r.metrics = newRouterMetrics(p.Scope, r)
	r.wg.Add(1)
	go r.sweeper()
	return r
}

// Label returns the router's label.
func (r *Router) Label() string { return r.p.Label }

// Dtab returns the router's base dtab.
func (r *Router) Dtab() dtab.Dtab { return r.p.Dtab }

// Interpreter returns the router's interpreter (for the delegator).
func (r *Router) Interpreter() naming.Interpreter { return r.p.Interpreter }

// RoundTrip routes req to dst. req must be a client request (RequestURI
// empty, URL.Scheme set); the router sets URL.Host to the chosen endpoint
// and the l5d-dst-* headers. Errors are typed (*NoRouteError,
// *BindingTimeoutError, *ConnectError, ...); the edge maps them to
// responses.
func (r *Router) RoundTrip(req *http.Request, dst Dst) (*http.Response, error) {
	select {
	case <-r.stop:
		return nil, ErrClosed
	default:
	}
	var buf [128]byte
	p := r.paths.getBytes(appendPathKey(buf[:0], dst), coarseNow())
	p.init(dst)
	return p.svc.RoundTrip(req)
}

// appendPathKey appends the path-tier cache key of dst to b: the logical
// name's elements, each followed by NUL (which no element read from a
// request can contain), then the local dtab, if any.
func appendPathKey(b []byte, dst Dst) []byte {
	for _, e := range dst.Path {
		b = append(b, e...)
		b = append(b, 0)
	}
	if len(dst.Local) > 0 {
		b = append(b, 0)
		b = append(b, dst.Local.String()...)
	}
	return b
}

// Close stops the router: new requests fail with ErrClosed, watches are
// cancelled and idle connections closed. In-flight requests finish.
func (r *Router) Close() error {
	r.stopOnce.Do(func() {
		close(r.stop)
		r.wg.Wait()
		r.paths.closeAll()
		r.bounds.closeAll()
		r.clients.closeAll()
	})
	return nil
}

func (r *Router) sweeper() {
	defer r.wg.Done()
	period := r.p.IdleTTL / 4
	if period > 30*time.Second {
		period = 30 * time.Second
	}
	if period < 10*time.Millisecond {
		period = 10 * time.Millisecond
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			now := monoNow()
			r.paths.sweep(now)
			r.bounds.sweep(now)
			r.clients.sweep(now)
		}
	}
}

// coarseNow is the cache clock: monoNow truncated to 10ms, so that
// entries used by every request are not rewritten on every request.
func coarseNow() int64 { return coarse(monoNow()) }

// coarse truncates a clock.Mono reading to the cache clock's 10ms.
func coarse(n int64) int64 { return n - n%int64(10*time.Millisecond) }

// monoNow is the caches' clock (clock.Mono): a wall clock step cannot
// make a cache entry look idle.
func monoNow() int64 { return clock.Mono() }

// waitReady waits for ch to be closed, for at most the binding timeout
// (and no longer than ctx allows). It reports whether ch was closed.
func (r *Router) waitReady(ctx context.Context, ch <-chan struct{}) (bool, error) {
	select {
	case <-ch:
		return true, nil
	default:
	}
	t := time.NewTimer(r.p.BindingTimeout)
	defer t.Stop()
	select {
	case <-ch:
		return true, nil
	case <-t.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-r.stop:
		return false, ErrClosed
	}
}
