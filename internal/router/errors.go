package router

import (
	"errors"
	"fmt"
	"github.com/linnet-mesh/linnet/internal/middleware"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// NoRouteError says a logical name bound to nothing usable: negative,
// failed or empty. The edge answers 502 with "Unable to route request!".
type NoRouteError struct {
	// Name is the logical name, e.g. /svc/hello.
	Name dtab.Path
	// Base is the router's dtab; Local the request's override dtab.
	Base, Local dtab.Dtab
	// Reason is a short cause: "name resolved to nothing (neg)",
	// "no endpoints", or a namer failure.
	Reason string
	// Bound is the bound id when the failure was in the bound tier.
	Bound dtab.Path
}

func (e *NoRouteError) Error() string {
	if e.Bound != nil {
		return fmt.Sprintf("unable to route %s: %s: %s", e.Name, e.Bound, e.Reason)
	}
	return fmt.Sprintf("unable to route %s: %s", e.Name, e.Reason)
}

// BindingTimeoutError says binding did not finish within bindingTimeoutMs.
type BindingTimeoutError struct {
	Name    dtab.Path
	Timeout string
}

func (e *BindingTimeoutError) Error() string {
	return fmt.Sprintf("exceeded %s binding timeout while resolving name: %s", e.Timeout, e.Name)
}

// ConnectError says the connection to an endpoint could not be made; the
// request was not sent, so it is safe to retry.
type ConnectError struct {
	Addr  string
	Bound dtab.Path
	Err   error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("unable to connect to %s (%s): %v", e.Addr, e.Bound, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// NotWritten reports that the request never reached the endpoint
// (middleware.IsNotWritten), so retries and requeues may resend it.
func (e *ConnectError) NotWritten() bool { return true }

// ErrClosed is returned for requests routed after Close.
var ErrClosed = errors.New("router is closed")

// TimeoutError is the error of the router's timeouts (totalTimeoutMs,
// requestAttemptTimeoutMs); the edge answers 503.
type TimeoutError = middleware.TimeoutError
