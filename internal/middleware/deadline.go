package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HeaderDeadline carries a request's deadline between linkerd hops.
const HeaderDeadline = "l5d-ctx-deadline"

// Deadline is Finagle's request deadline: when the request started and
// when it must be answered by.
type Deadline struct {
	Start    time.Time
	Deadline time.Time
}

// ParseDeadline decodes one l5d-ctx-deadline value: two decimal integers,
// epoch nanoseconds of the start and of the deadline, separated by a
// space (headers-admin.md §2.2).
func ParseDeadline(v string) (Deadline, error) {
	f := strings.Fields(v)
	if len(f) != 2 {
		return Deadline{}, fmt.Errorf("%s: want \"<start-nanos> <deadline-nanos>\", got %q", HeaderDeadline, v)
	}
	s, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return Deadline{}, fmt.Errorf("%s: start %q is not an integer of nanoseconds", HeaderDeadline, f[0])
	}
	d, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return Deadline{}, fmt.Errorf("%s: deadline %q is not an integer of nanoseconds", HeaderDeadline, f[1])
	}
	return Deadline{Start: time.Unix(0, s), Deadline: time.Unix(0, d)}, nil
}

// String encodes d as an l5d-ctx-deadline value.
func (d Deadline) String() string {
	return strconv.FormatInt(d.Start.UnixNano(), 10) + " " + strconv.FormatInt(d.Deadline.UnixNano(), 10)
}

// Combine returns the stricter of d and o: the later start and the earlier
// deadline (Finagle's Deadline.combined).
func (d Deadline) Combine(o Deadline) Deadline {
	if o.Start.After(d.Start) {
		d.Start = o.Start
	}
	if o.Deadline.Before(d.Deadline) {
		d.Deadline = o.Deadline
	}
	return d
}

// ReadDeadline decodes every l5d-ctx-deadline value of h (each header line,
// and comma-joined values within one) into the strictest deadline, and
// removes the header. ok is false when there was none; a value that does
// not parse is an error naming it (the proxy answers 400).
func ReadDeadline(h http.Header) (d Deadline, ok bool, err error) {
	vs := h.Values(HeaderDeadline)
	h.Del(HeaderDeadline)
	for _, line := range vs {
		for v := range strings.SplitSeq(line, ",") {
			x, perr := ParseDeadline(v)
			if perr != nil {
				return Deadline{}, false, perr
			}
			if ok {
				x = d.Combine(x)
			}
			d, ok = x, true
		}
	}
	return d, ok, nil
}

type deadlineKey struct{}

// WithDeadline returns ctx carrying the caller's deadline d, combined with
// one already there. The proxy calls it with ReadDeadline's result.
func WithDeadline(ctx context.Context, d Deadline) context.Context {
	if old, ok := DeadlineFrom(ctx); ok {
		d = old.Combine(d)
	}
	return context.WithValue(ctx, deadlineKey{}, d)
}

// DeadlineFrom returns the caller's deadline stored by WithDeadline.
func DeadlineFrom(ctx context.Context) (Deadline, bool) {
	d, ok := ctx.Value(deadlineKey{}).(Deadline)
	return d, ok
}

// DeadlineOptions configures EnforceDeadline.
type DeadlineOptions struct {
	// Cancel also cancels a request in flight when the caller's deadline
	// passes. Linkerd 1 treated deadlines as advisory (it only propagated
	// them); an already-passed deadline is refused either way.
	Cancel bool
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// EnforceDeadline fails a request whose caller deadline (WithDeadline) has
// already passed with a *TimeoutError of kind TimeoutDeadline, before it
// reaches the balancer, so no endpoint is charged with the failure. With
// Cancel, the request's context also ends at the deadline.
func EnforceDeadline(o DeadlineOptions) Middleware {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			d, ok := DeadlineFrom(req.Context())
			if !ok {
				return next.RoundTrip(req)
			}
			te := &TimeoutError{Kind: TimeoutDeadline, Deadline: d.Deadline}
			if !now().Before(d.Deadline) {
				closeBody(req)
				return nil, te
			}
			if !o.Cancel {
				return next.RoundTrip(req)
			}
			ctx, cancel := context.WithDeadlineCause(req.Context(), d.Deadline, te)
			return finish(next.RoundTrip(req.WithContext(ctx)))(ctx, cancel)
		})
	}
}

// PropagateDeadline writes l5d-ctx-deadline on the outgoing request: the
// caller's deadline combined with the context's own deadline (total and
// attempt timeouts), started at the caller's start or now. It belongs
// innermost, just above the transport, where every timeout is in the
// context. The request's headers are copied, not modified. Without a
// context deadline the request goes as it is: a caller's deadline alone
// is already on it (the proxy re-encodes the inbound one).
func PropagateDeadline() Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			ctx := req.Context()
			cd, has := ctx.Deadline()
			if !has {
				return next.RoundTrip(req)
			}
			d, ok := DeadlineFrom(ctx)
			if !ok {
				d = Deadline{Start: time.Now(), Deadline: cd}
			} else if cd.Before(d.Deadline) {
				d.Deadline = cd
			}
			out := new(http.Request)
			*out = *req
			out.Header = req.Header.Clone()
			if out.Header == nil {
				out.Header = http.Header{}
			}
			out.Header.Set(HeaderDeadline, d.String())
			return next.RoundTrip(out)
		})
	}
}

// finish ties cancel to the response: on error it cancels at once and
// turns a context error caused by this layer's own timer into that cause;
// on success it cancels when the body is closed or read to the end.
func finish(resp *http.Response, err error) func(context.Context, context.CancelFunc) (*http.Response, error) {
	return func(ctx context.Context, cancel context.CancelFunc) (*http.Response, error) {
		if err != nil {
			cause := context.Cause(ctx)
			cancel()
			var te *TimeoutError
			if errors.As(cause, &te) && ctx.Err() != nil {
				return nil, te
			}
			return nil, err
		}
		if resp.Body == nil || resp.Body == http.NoBody {
			cancel()
			return resp, nil
		}
		resp.Body = &cancelBody{ReadCloser: resp.Body, ctx: ctx, cancel: cancel}
		return resp, nil
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
