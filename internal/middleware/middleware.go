// Package middleware holds the resilience filters of the request path as
// http.RoundTripper decorators: response classification, retries with
// budgets, requeues, total and per-attempt timeouts, l5d-ctx-deadline
// propagation and a concurrency limiter.
//
// Each filter is a Middleware; Chain composes them, the first argument
// outermost. The order the router must use, and why, is documented on
// Chain. Filters never log; they report through telemetry.Scope counters
// with Linkerd's metric names and return typed errors (TimeoutError,
// ConnectError, RejectedError) that the proxy maps to a status code and
// l5d-err with ErrorStatus.
package middleware

import "net/http"

// Middleware decorates a RoundTripper with one concern.
type Middleware func(http.RoundTripper) http.RoundTripper

// RoundTripperFunc adapts a function to http.RoundTripper.
type RoundTripperFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f(r).
func (f RoundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Chain composes ms into one Middleware; ms[0] is the outermost, so
// Chain(a, b, c)(rt) is a(b(c(rt))). Nil entries are skipped, which lets
// callers write Chain(maybeLimit, ...) for optional filters.
//
// The router builds a request's path, outermost first:
//
//	service (per logical name, path tier):
//	  Classify      final response → l5d-success-class / l5d-retryable, stats
//	  Deadline      inbound l5d-ctx-deadline already past → TimeoutError
//	                before any endpoint is charged for it
//	  TotalTimeout  service.totalTimeoutMs, spans every retry
//	  Retry         service.retries: classifier + budget + backoff
//	client (per bound name, bound tier):
//	  Requeue       client.requeueBudget: connection failures only, immediate
//	  balancer.RoundTripper   Pick, done(failed) feeds load and failure accrual
//	  AttemptTimeout client.requestAttemptTimeoutMs (inside the balancer so a
//	                slow endpoint's timeouts count as its failures)
//	  PropagateDeadline  writes l5d-ctx-deadline = min(inbound, ctx deadline)
//	transport      http.Transport whose DialContext is Dialer(connectTimeout)
//
// Limit (maxConcurrentRequests) goes outermost at the server, before
// identification, so a rejected request costs nothing.
func Chain(ms ...Middleware) Middleware {
	return func(rt http.RoundTripper) http.RoundTripper {
		for i := len(ms) - 1; i >= 0; i-- {
			if ms[i] != nil {
				rt = ms[i](rt)
			}
		}
		return rt
	}
}
