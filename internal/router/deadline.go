package router

import (
	"net/http"

	"github.com/linnet-mesh/linnet/internal/middleware"
)

// hdrCtxDeadline is l5d-ctx-deadline in net/http's canonical case. The
// edge has already combined every inbound value into the strictest one
// and written it on the request it hands the router (proxy.ReadContext,
// Context.WriteOutbound), so the router reads exactly one value here.
const hdrCtxDeadline = "L5d-Ctx-Deadline"

// callerDeadline is the path-tier module that turns the caller's
// l5d-ctx-deadline into the request context's deadline
// (middleware.WithDeadline) and enforces it (middleware.EnforceDeadline):
// a request whose deadline has already passed fails with a
// *middleware.TimeoutError — the edge's 503 timeout answer — before any
// endpoint is picked, so no backend sees it and no endpoint is charged
// with the failure. Deadlines stay advisory for requests still in time,
// as in Linkerd 1: they are propagated, not used to cancel.
//
// A value the edge could not parse never gets here (it drops it), so a
// value that does not parse is passed over rather than failed.
func callerDeadline() Middleware {
	enforce := middleware.EnforceDeadline(middleware.DeadlineOptions{})
	return func(next http.RoundTripper) http.RoundTripper {
		enforced := enforce(next)
		return RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
			vs := r.Header[hdrCtxDeadline]
			if len(vs) == 0 {
				return next.RoundTrip(r)
			}
			d, err := middleware.ParseDeadline(vs[0])
			if err != nil {
				return next.RoundTrip(r)
			}
			return enforced.RoundTrip(r.WithContext(middleware.WithDeadline(r.Context(), d)))
		})
	}
}
