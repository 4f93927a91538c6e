package middleware

import "github.com/linnet-mesh/linnet/internal/middleware/backoff"

// Express is the part of a retry or requeue policy that the router's
// express lane applies itself (docs/performance.md, "Fifth pass"): the
// lane sends a plain request without the middleware, so it deposits into
// the budget, withdraws for a retry and records the retries per request
// through these, exactly as the middleware's loop would.
type Express struct{ r *retrier }

// Valid reports whether e belongs to a policy (the zero Express does not).
func (e Express) Valid() bool { return e.r != nil }

// Begin counts one request into the budget (each request deposits) and
// returns the number of retries it may make (-1: as many as the budget
// allows); now is the caller's clock.Mono reading.
func (e Express) Begin(now int64) (limit int) {
	e.r.budget.depositAt(now)
	return int(e.r.limit())
}

// Retry asks for one more retry of a request that has made retries of
// its limit (Begin's): false, with request_limit or budget_exhausted
// counted, when it may not; true, with the retry withdrawn and counted,
// otherwise.
func (e Express) Retry(retries, limit int) bool {
	return !e.r.refuse(int64(retries), int64(limit))
}

// End records how many retries the request took.
func (e Express) End(retries int) { e.r.perRequest.Add(int64(retries)) }

// Immediate reports whether retries are sent without waiting (the
// default constant 0 ms backoff): the express lane only retries then.
func (e Express) Immediate() bool {
	o := e.r.backoff.Options()
	return o.Kind == "" || o.Kind == backoff.KindConstant && o.Ms == 0
}
