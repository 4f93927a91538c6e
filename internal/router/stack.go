package router

import (
	"net/http"

	"github.com/linnet-mesh/linnet/internal/middleware"
)

// Middleware wraps the next RoundTripper of a tier with one concern.
type Middleware = middleware.Middleware

// RoundTripperFunc adapts a function to http.RoundTripper.
type RoundTripperFunc = middleware.RoundTripperFunc

// Module is one named position in a tier's stack. New returns nil when the
// module does not apply to this entry (e.g. no timeout configured).
type Module[P any] struct {
	Role string
	New  func(P) Middleware
}

// The three stacks, outermost module first. This is the one place that
// orders the router's modules; each position says why it is there.
var (
	// pathStack runs once per logical name (rt/<label>/service/<name>).
	pathStack = []Module[*pathEntry]{
		// Outermost: the service stats see the request exactly as the
		// caller does, including every retry and the total timeout.
		{Role: "ServiceStats", New: func(p *pathEntry) Middleware { return p.r.serviceStats(p) }},
		// Classification (l5d-success-class, l5d-retryable) describes the
		// response finally returned, so it sits above the retries.
		{Role: "Classify", New: func(p *pathEntry) Middleware { return middleware.Classify(p.policy.Classifier) }},
		// The caller's l5d-ctx-deadline is enforced above the total
		// timeout and the retries: a request already out of time is
		// answered at once and never reaches the balancer, so no endpoint
		// is charged with it (and its classification is the timeout).
		{Role: "Deadline", New: func(*pathEntry) Middleware { return callerDeadline() }},
		// The total timeout bounds all attempts together, so it must be
		// above the retries.
		{Role: "TotalTimeout", New: func(p *pathEntry) Middleware { return middleware.TotalTimeout(p.policy.TotalTimeout) }},
		// Retries re-run everything below, i.e. a new pick of the bound
		// name and the endpoint for every attempt.
		{Role: "Retries", New: func(p *pathEntry) Middleware { return p.policy.Retries }},
		// l5d-dst-service names the logical name on every attempt. Below
		// the stack, pathEntry.route picks a branch of the bound tree and
		// continues in the bound tier.
		{Role: "DstService", New: func(p *pathEntry) Middleware { return setHeader(hdrDstService, p.nameStr) }},
	}

	// boundStack runs once per bound name (rt/<label>/client/<id>).
	boundStack = []Module[*boundEntry]{
		// Client stats count each attempt sent to this replica set.
		{Role: "ClientStats", New: func(b *boundEntry) Middleware { return b.r.clientStats(b) }},
		// Requeues resend, at once and to a new pick of the balancer,
		// requests that were never written (connection failures); the
		// client stats above see one request, as in Finagle.
		{Role: "Requeue", New: func(b *boundEntry) Middleware { return b.policy.Requeue }},
		// The per-attempt timeout is below the client stats so that a
		// timed-out attempt is recorded as a client failure, and above the
		// balancer so the endpoint is charged with it.
		{Role: "AttemptTimeout", New: func(b *boundEntry) Middleware { return middleware.AttemptTimeout(b.policy.AttemptTimeout) }},
		// l5d-dst-client names the replica set. Below the stack,
		// boundEntry.balance picks an endpoint and continues in the
		// client tier.
		{Role: "DstClient", New: func(b *boundEntry) Middleware { return setHeader(hdrDstClient, b.id) }},
		// Innermost, where every timeout above is in the context: the
		// outbound l5d-ctx-deadline becomes the caller's deadline combined
		// with totalTimeoutMs and requestAttemptTimeoutMs, as Finagle
		// propagates deadlines, so that the next hop knows the time left.
		{Role: "PropagateDeadline", New: func(*boundEntry) Middleware { return middleware.PropagateDeadline() }},
	}
)

// compose builds the RoundTripper of one entry from its stack.
func compose[P any](stack []Module[P], p P, terminal http.RoundTripper) http.RoundTripper {
	rt := terminal
	for i := len(stack) - 1; i >= 0; i-- {
		if m := stack[i].New(p); m != nil {
			rt = m(rt)
		}
	}
	return rt
}

// roles returns the role names of a stack, in order (for tests and admin).
func roles[P any](stack []Module[P]) []string {
	out := make([]string, len(stack))
	for i, m := range stack {
		out[i] = m.Role
	}
	return out
}

// setHeader returns a module that sets header k to v on every request.
func setHeader(k, v string) Middleware {
	vs := []string{v}
	return func(next http.RoundTripper) http.RoundTripper {
		return RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
			r.Header[k] = vs
			return next.RoundTrip(r)
		})
	}
}
