package router

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// TimeoutError says a configured timeout expired. The edge answers 503.
type TimeoutError struct {
	// Option is the config key: totalTimeoutMs or requestAttemptTimeoutMs.
	Option  string
	Timeout time.Duration
	Name    dtab.Path
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("exceeded %s (%s) to %s", e.Option, e.Timeout, e.Name)
}

// Kind implements the failure-kind naming of ErrorKind.
func (e *TimeoutError) Kind() string { return "TimeoutError" }

// timeoutModule bounds the rest of the stack (until response headers, and
// the body read after them) by d. Nil when d is zero.
func timeoutModule(d time.Duration, name dtab.Path, option string) Middleware {
	if d <= 0 {
		return nil
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			ctx, cancel := context.WithTimeout(req.Context(), d)
			resp, err := next.RoundTrip(req.WithContext(ctx))
			if err != nil {
				cancel()
				if ctx.Err() == context.DeadlineExceeded {
					return nil, &TimeoutError{Option: option, Timeout: d, Name: name}
				}
				return nil, err
			}
			resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		})
	}
}

// cancelBody releases a timeout's context when the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelBody) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
