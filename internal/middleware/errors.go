package middleware

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// TimeoutKind says which limit a TimeoutError hit.
type TimeoutKind uint8

// Timeout kinds.
const (
	// TimeoutTotal is service.totalTimeoutMs: the whole request, retries
	// included.
	TimeoutTotal TimeoutKind = iota + 1
	// TimeoutAttempt is client.requestAttemptTimeoutMs: one attempt.
	TimeoutAttempt
	// TimeoutDeadline is the caller's l5d-ctx-deadline.
	TimeoutDeadline
)

func (k TimeoutKind) String() string {
	switch k {
	case TimeoutTotal:
		return "totalTimeoutMs"
	case TimeoutAttempt:
		return "requestAttemptTimeoutMs"
	case TimeoutDeadline:
		return "l5d-ctx-deadline"
	}
	return "timeout"
}

// TimeoutError is returned when a request ran out of time. The proxy maps
// it to 503 with l5d-err (ErrorStatus).
type TimeoutError struct {
	Kind TimeoutKind
	// Timeout is the configured duration (0 for TimeoutDeadline).
	Timeout time.Duration
	// Deadline is the absolute time that passed.
	Deadline time.Time
}

func (e *TimeoutError) Error() string {
	switch e.Kind {
	case TimeoutDeadline:
		return fmt.Sprintf("request deadline (l5d-ctx-deadline) %s passed before a response", e.Deadline.UTC().Format(time.RFC3339Nano))
	case TimeoutAttempt:
		return fmt.Sprintf("exceeded %s (requestAttemptTimeoutMs) waiting for a response to one request attempt", e.Timeout)
	}
	return fmt.Sprintf("exceeded %s (totalTimeoutMs) waiting for a response, retries included", e.Timeout)
}

// Is makes errors.Is(err, context.DeadlineExceeded) hold for timeouts.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// ConnectError is a failure to establish a connection to an endpoint:
// nothing of the request was written, so retrying it is safe for any
// method. Dialer produces it.
type ConnectError struct {
	Addr string
	Err  error
}

func (e *ConnectError) Error() string { return fmt.Sprintf("connecting to %s: %v", e.Addr, e.Err) }
func (e *ConnectError) Unwrap() error { return e.Err }

// NotWritten reports that the request never reached the endpoint.
func (e *ConnectError) NotWritten() bool { return true }

// RejectedError is returned by Limit when the concurrency limit (and its
// pending queue) is full; the request was not processed.
type RejectedError struct {
	Limit, Pending int
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("rejected: %d concurrent requests and %d pending reached (maxConcurrentRequests)", e.Limit, e.Pending)
}

// NotWritten reports that the request was not sent anywhere.
func (e *RejectedError) NotWritten() bool { return true }

// IsNotWritten reports whether err says the request never left this
// process (a connection could not be made, or it was rejected locally), so
// that resending it cannot duplicate side effects. Any error in the chain
// with a NotWritten() bool method that returns true counts, as does a
// net.OpError from dialing.
func IsNotWritten(err error) bool {
	if err == nil {
		return false
	}
	var nw interface{ NotWritten() bool }
	if errors.As(err, &nw) && nw.NotWritten() {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ErrorStatus maps an error from the middleware stack to the response the
// proxy generates (headers-admin.md §4), with l5d-err carrying err.Error():
//
//	*TimeoutError (any kind)          503, l5d-retryable: false
//	*RejectedError (Limit)            503, l5d-retryable: true
//	*ConnectError, dial errors        502, l5d-retryable: true
//	anything else                     502, l5d-retryable: IsNotWritten(err)
//
// balancer.ErrNoEndpoints and binding failures are the router's to map
// (502 "Unable to route request!").
func ErrorStatus(err error) (status int, retryable bool) {
	var te *TimeoutError
	var re *RejectedError
	switch {
	case errors.As(err, &te):
		return http.StatusServiceUnavailable, false
	case errors.As(err, &re):
		return http.StatusServiceUnavailable, true
	}
	return http.StatusBadGateway, IsNotWritten(err)
}
