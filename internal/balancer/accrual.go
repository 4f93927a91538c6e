package balancer

import (
	"math"
	"time"
)

// policy decides, from a stream of outcomes on one endpoint, when to eject
// it. It is guarded by endpointState.mu.
type policy interface {
	// record adds one outcome and reports whether the endpoint should be
	// ejected now.
	record(success bool, now int64) bool
	// reset forgets history (after a revival).
	reset()
}

func newPolicy(a AccrualOptions) policy {
	switch a.Kind {
	case AccrualConsecutiveFailures:
		return &consecutiveFailures{limit: a.Failures}
	case AccrualSuccessRate:
		// An EMA over the last Requests outcomes (Finagle's Ema keyed by
		// request count).
		return &successRate{required: a.SuccessRate, window: float64(a.Requests), byCount: true}
	case AccrualSuccessRateWindowed:
		return &successRate{required: a.SuccessRate, window: float64(time.Duration(a.Window) * time.Second)}
	}
	return nil // none
}

type consecutiveFailures struct {
	limit, n int
}

func (p *consecutiveFailures) record(success bool, _ int64) bool {
	if success {
		p.n = 0
		return false
	}
	p.n++
	return p.n >= p.limit
}

func (p *consecutiveFailures) reset() { p.n = 0 }

// minRequests is how many outcomes a success-rate policy needs before it
// may eject (Finagle's SuccessRateFailureAccrualPolicy minRequestThreshold).
const minRequests = 5

// successRate keeps an exponential moving average of success (1) and
// failure (0), over a window measured in requests (byCount) or in time.
type successRate struct {
	required float64
	window   float64
	byCount  bool

	ema   float64
	stamp int64 // outcome count or unix nanos of the last update
	seen  int
}

func (p *successRate) record(success bool, now int64) bool {
	x := 0.0
	if success {
		x = 1
	}
	if p.byCount {
		now = p.stamp + 1
	}
	if p.seen == 0 {
		p.ema = x
	} else {
		w := math.Exp(-float64(max(now-p.stamp, 0)) / p.window)
		p.ema = x*(1-w) + p.ema*w
	}
	p.stamp = now
	p.seen++
	return p.seen >= minRequests && p.ema < p.required
}

func (p *successRate) reset() { p.ema, p.stamp, p.seen = 0, 0, 0 }
