package middleware

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// TotalTimeout is service.totalTimeoutMs: the request, retries and
// backoffs included, must be answered within d; otherwise it fails with a
// *TimeoutError of kind TimeoutTotal. d <= 0 returns nil (no filter; Chain
// skips it). The timer keeps running while the response body is read, and
// stops when it is closed or read to the end.
func TotalTimeout(d time.Duration) Middleware { return timeout(d, TimeoutTotal) }

// AttemptTimeout is client.requestAttemptTimeoutMs: each attempt (the
// original or a retry) gets d; a timed-out attempt fails with a
// *TimeoutError of kind TimeoutAttempt, which retryable classifiers treat
// as retryable for idempotent methods.
func AttemptTimeout(d time.Duration) Middleware { return timeout(d, TimeoutAttempt) }

func timeout(d time.Duration, k TimeoutKind) Middleware {
	if d <= 0 {
		return nil
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			te := &TimeoutError{Kind: k, Timeout: d, Deadline: time.Now().Add(d)}
			ctx, cancel := context.WithDeadlineCause(req.Context(), te.Deadline, te)
			return finish(next.RoundTrip(req.WithContext(ctx)))(ctx, cancel)
		})
	}
}

// cancelBody releases a timeout's context when the body is done with, and
// reports the timeout as the cause when it cut the body short.
type cancelBody struct {
	io.ReadCloser
	ctx    context.Context
	cancel context.CancelFunc
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cancel()
	} else if err != nil {
		if cause := context.Cause(b.ctx); b.ctx.Err() != nil {
			var te *TimeoutError
			if errors.As(cause, &te) {
				err = te
			}
		}
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
