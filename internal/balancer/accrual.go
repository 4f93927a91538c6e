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
		return &successRate{required: a.SuccessRate, window: float64(a.Requests)}
	case AccrualSuccessRateWindowed:
		return &windowedRate{required: a.SuccessRate, slot: int64(time.Duration(a.Window) * time.Second / windowSlots)}
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
// failure (0) over the last `window` requests (Finagle's Ema stamped by
// request count).
type successRate struct {
	required float64
	window   float64

	ema  float64
	seen int
}

func (p *successRate) record(success bool, _ int64) bool {
	x := 0.0
	if success {
		x = 1
	}
	if p.seen == 0 {
		p.ema = x
	} else {
		w := math.Exp(-1 / p.window)
		p.ema = x*(1-w) + p.ema*w
	}
	p.seen++
	return p.seen >= minRequests && p.ema < p.required
}

func (p *successRate) reset() { p.ema, p.seen = 0, 0 }

// windowSlots is the resolution of the windowed policy.
const windowSlots = 10

// windowedRate is the success rate over the last `window` seconds, counted
// in windowSlots time slots. (A time-stamped EMA, as Finagle uses, does not
// move when many outcomes share a timestamp; exact counts do.)
type windowedRate struct {
	required float64
	slot     int64 // slot length, ns

	ok, all [windowSlots]int64
	epoch   [windowSlots]int64 // which slot number each entry counts
}

func (p *windowedRate) record(success bool, now int64) bool {
	n := now / p.slot
	i := int(n % windowSlots)
	if p.epoch[i] != n {
		p.epoch[i], p.ok[i], p.all[i] = n, 0, 0
	}
	p.all[i]++
	if success {
		p.ok[i]++
	}
	var ok, all int64
	for j := range windowSlots {
		if n-p.epoch[j] < windowSlots {
			ok += p.ok[j]
			all += p.all[j]
		}
	}
	return all >= minRequests && float64(ok) < p.required*float64(all)
}

func (p *windowedRate) reset() { *p = windowedRate{required: p.required, slot: p.slot} }
