package middleware

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// LimitOptions configures Limit. MaxConcurrentRequests maps to Linkerd's
// servers[].maxConcurrentRequests; MaxPending (not a Linkerd key) lets that
// many requests wait for a slot instead of being refused at once.
type LimitOptions struct {
	MaxConcurrentRequests int `yaml:"maxConcurrentRequests"`
	MaxPending            int `yaml:"-"`
}

// Limit admits at most MaxConcurrentRequests requests at a time; a request
// is in flight until its response body is closed or read to the end. Up
// to MaxPending more wait for a slot (until their context ends); beyond
// that a request fails at once with *RejectedError, which the proxy turns
// into a fast 503 (ErrorStatus). MaxConcurrentRequests <= 0 returns nil
// (unlimited). Metrics under scope: request_concurrency and
// request_queue_size gauges, dropped_requests counter (Finagle's names).
func Limit(o LimitOptions, scope telemetry.Scope) Middleware {
	if o.MaxConcurrentRequests <= 0 {
		return nil
	}
	l := &limiter{
		o:       o,
		slots:   make(chan struct{}, o.MaxConcurrentRequests),
		dropped: scope.Counter("dropped_requests"),
	}
	scope.Gauge("request_concurrency", func() float64 { return float64(len(l.slots)) })
	scope.Gauge("request_queue_size", func() float64 { return float64(l.waiting.Load()) })
	return func(next http.RoundTripper) http.RoundTripper {
		return RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if err := l.acquire(req); err != nil {
				closeBody(req)
				return nil, err
			}
			resp, err := next.RoundTrip(req)
			if err != nil || resp.Body == nil || resp.Body == http.NoBody {
				l.release()
				return resp, err
			}
			resp.Body = &releaseBody{ReadCloser: resp.Body, release: l.release}
			return resp, nil
		})
	}
}

type limiter struct {
	o       LimitOptions
	slots   chan struct{}
	waiting atomic.Int64
	dropped *telemetry.Counter
}

func (l *limiter) acquire(req *http.Request) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if w := l.waiting.Add(1); w > int64(l.o.MaxPending) {
		l.waiting.Add(-1)
		l.dropped.Inc()
		return &RejectedError{Limit: l.o.MaxConcurrentRequests, Pending: l.o.MaxPending}
	}
	defer l.waiting.Add(-1)
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-req.Context().Done():
		l.dropped.Inc()
		return contextErr(req.Context())
	}
}

func (l *limiter) release() { <-l.slots }

type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
