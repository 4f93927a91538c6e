package middleware

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// RetryOptions maps 1:1 to Linkerd's service.retries.
type RetryOptions struct {
	Budget BudgetOptions `yaml:"budget"`
	// Backoff between retries; nil means constant 0 ms.
	Backoff *backoff.Options `yaml:"backoff"`

	// MaxBufferBytes bounds the request body kept for replay (not a
	// Linkerd key); 0 means DefaultMaxRetryBuffer. Requests with larger or
	// chunked (unknown length) bodies are never retried.
	MaxBufferBytes int64 `yaml:"-"`
}

// DefaultMaxRetryBuffer is the largest request body buffered for retries.
const DefaultMaxRetryBuffer = 8 << 10

// Retry is service.retries: it re-sends a request whose outcome c
// classifies as a retryable failure, or that failed without being written
// (IsNotWritten, safe for any method), while the budget allows, waiting
// the backoff between attempts. Each request deposits into the budget;
// each retry withdraws. When the budget is exhausted the last response or
// error is returned as is.
//
// Only replayable requests are retried: no body, a body with GetBody, or a
// body of known length up to MaxBufferBytes (buffered). Metrics under
// scope (the service scope): retries/total, retries/per_request,
// retries/budget_exhausted, retries/budget.
func Retry(o RetryOptions, c Classifier, scope telemetry.Scope) (Middleware, error) {
	m, _, err := NewRetry(o, c, scope)
	return m, err
}

// NewRetry is Retry, with the hooks of the same policy for the router's
// express lane.
func NewRetry(o RetryOptions, c Classifier, scope telemetry.Scope) (Middleware, Express, error) {
	bud, err := NewBudget(o.Budget)
	if err != nil {
		return nil, Express{}, fmt.Errorf("retries.%w", err)
	}
	bo := backoff.Constant(0)
	if o.Backoff != nil {
		if bo, err = backoff.New(*o.Backoff); err != nil {
			return nil, Express{}, fmt.Errorf("retries.%w", err)
		}
	}
	r := &retrier{
		budget: bud, backoff: bo, classifier: c, maxBuf: o.MaxBufferBytes,
		total:      scope.Counter("retries/total"),
		perRequest: scope.Stat("retries/per_request"),
		exhausted:  scope.Counter("retries/budget_exhausted"),
	}
	scope.Gauge("retries/budget", func() float64 { return float64(bud.Balance()) })
	return r.middleware, Express{r}, nil
}

// Requeue is client.requeueBudget (same keys as a retry budget): the client-level retry of requests that failed without being
// written (connection failures, IsNotWritten), immediately and for any
// method, so the balancer picks another endpoint. It goes above the
// balancer. One request requeues at most MaxRequeueShare of the budget's
// balance. Metrics under scope (the client scope): retries/requeues,
// retries/requeues_per_request, retries/budget_exhausted,
// retries/request_limit (a request stopped by its share), retries/budget.
func Requeue(budget BudgetOptions, scope telemetry.Scope) (Middleware, error) {
	m, _, err := NewRequeue(budget, scope)
	return m, err
}

// NewRequeue is Requeue, with the hooks of the same policy for the
// router's express lane.
func NewRequeue(budget BudgetOptions, scope telemetry.Scope) (Middleware, Express, error) {
	bud, err := NewBudget(budget)
	if err != nil {
		return nil, Express{}, fmt.Errorf("requeueBudget.%w", err)
	}
	r := &retrier{
		budget: bud, backoff: backoff.Constant(0),
		share:        MaxRequeueShare,
		total:        scope.Counter("retries/requeues"),
		perRequest:   scope.Stat("retries/requeues_per_request"),
		exhausted:    scope.Counter("retries/budget_exhausted"),
		requestLimit: scope.Counter("retries/request_limit"),
	}
	scope.Gauge("retries/budget", func() float64 { return float64(bud.Balance()) })
	return r.middleware, Express{r}, nil
}

// MaxRequeueShare is the share of the requeue budget's balance one
// request may spend (rounded up), as Finagle's requeue filter allows:
// without it, one request to a dead endpoint requeues until the budget is
// empty and leaves none for the requests that follow.
const MaxRequeueShare = 0.2

type retrier struct {
	budget     *Budget
	backoff    backoff.Policy
	classifier Classifier // nil: requeue only
	maxBuf     int64
	// share, when positive, caps each request's retries at that share of
	// the budget's balance when it starts (requeues: MaxRequeueShare).
	share float64

	total        *telemetry.Counter
	perRequest   *telemetry.Stat
	exhausted    *telemetry.Counter
	requestLimit *telemetry.Counter // nil without share
}

// limit returns the number of retries a request starting now may make:
// -1 for no limit but the budget's.
func (r *retrier) limit() int64 {
	if r.share <= 0 {
		return -1
	}
	return int64(math.Ceil(r.share * float64(r.budget.Balance())))
}

// refuse reports whether a request that has made retries retries may not
// make another, counting why: its own limit (request_limit) or an empty
// budget (budget_exhausted); otherwise the retry is withdrawn from the
// budget and counted.
func (r *retrier) refuse(retries, limit int64) bool {
	if limit >= 0 && retries >= limit {
		r.requestLimit.Inc()
		return true
	}
	if !r.budget.TryWithdraw() {
		r.exhausted.Inc()
		return true
	}
	r.total.Inc()
	return false
}

func (r *retrier) middleware(next http.RoundTripper) http.RoundTripper {
	return RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
		return r.roundTrip(next, req)
	})
}

func (r *retrier) roundTrip(next http.RoundTripper, req *http.Request) (*http.Response, error) {
	r.budget.Deposit()
	replay, ok, err := replayable(req, r.maxBuf)
	if err != nil {
		return nil, err
	}
	if !ok {
		r.perRequest.Add(0)
		return next.RoundTrip(req)
	}
	ctx := req.Context()
	bs := r.backoff.Stream()
	limit := r.limit()
	retries := int64(0)
	for {
		resp, err := next.RoundTrip(replay.next())
		if !r.shouldRetry(req, resp, err) || ctx.Err() != nil {
			r.perRequest.Add(retries)
			return resp, err
		}
		if r.refuse(retries, limit) {
			r.perRequest.Add(retries)
			return resp, err
		}
		discard(resp)
		if d := bs.Next(); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				r.perRequest.Add(retries)
				return nil, contextErr(ctx)
			case <-t.C:
			}
		}
		retries++
	}
}

func (r *retrier) shouldRetry(req *http.Request, resp *http.Response, err error) bool {
	if IsNotWritten(err) {
		return true
	}
	if r.classifier == nil {
		return false
	}
	c := r.classifier.Classify(req, resp, err)
	return !c.Success && c.Retryable
}

// replayer produces a fresh copy of a request for each attempt: the
// request itself first when reuse is set, then copies with a body from
// body (none when nil). It is a value rather than a closure so that a
// bodiless request, the common case, is retried without allocating.
type replayer struct {
	req   *http.Request
	reuse bool
	body  func() (io.ReadCloser, error)
}

// next returns the request of the next attempt.
func (r *replayer) next() *http.Request {
	if r.reuse {
		r.reuse = false
		return r.req
	}
	out := new(http.Request)
	*out = *r.req
	if r.body != nil {
		b, err := r.body()
		if err != nil {
			b = io.NopCloser(errReader{err})
		}
		out.Body = b
	}
	return out
}

// replayable returns the replayer of req, and false when req's body
// cannot be replayed.
func replayable(req *http.Request, maxBuf int64) (replayer, bool, error) {
	if maxBuf <= 0 {
		maxBuf = DefaultMaxRetryBuffer
	}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return replayer{req: req, reuse: true}, true, nil
	case req.GetBody != nil:
		return replayer{req: req, reuse: true, body: req.GetBody}, true, nil
	case req.ContentLength > 0 && req.ContentLength <= maxBuf:
		buf := make([]byte, req.ContentLength)
		_, err := io.ReadFull(req.Body, buf)
		req.Body.Close()
		if err != nil {
			return replayer{}, false, fmt.Errorf("reading request body for retries: %w", err)
		}
		return replayer{req: req, body: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }}, true, nil
	}
	return replayer{}, false, nil // chunked, unknown length or too large
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// discard closes a response that is being retried, reading a little of it
// first so the connection can be reused.
func discard(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// contextErr is the cause of ctx's end, preferring a *TimeoutError.
func contextErr(ctx context.Context) error {
	if c := context.Cause(ctx); c != nil {
		return c
	}
	return ctx.Err()
}
