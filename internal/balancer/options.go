package balancer

import (
	"fmt"
	"strings"

	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
)

// Load balancer kinds (client.loadBalancer.kind).
const (
	KindP2C        = "p2c"
	KindEWMA       = "ewma"
	KindAperture   = "aperture"
	KindHeap       = "heap"
	KindRoundRobin = "roundRobin"
)

// Failure accrual kinds (client.failureAccrual.kind).
const (
	AccrualConsecutiveFailures = "io.l5d.consecutiveFailures"
	AccrualSuccessRate         = "io.l5d.successRate"
	AccrualSuccessRateWindowed = "io.l5d.successRateWindowed"
	AccrualNone                = "none"
)

// Options maps 1:1 to Linkerd's client.loadBalancer object; the fields a
// kind does not use are ignored. Zero values mean Linkerd's defaults.
type Options struct {
	// Kind is p2c (default), ewma, aperture, heap or roundRobin.
	Kind string `yaml:"kind"`
	// MaxEffort bounds how many times a pick retries to find an available
	// endpoint before falling back to an unavailable one (default 5).
	MaxEffort int `yaml:"maxEffort"`
	// DecayTimeMs is the peak-EWMA decay window (ewma; default 10000).
	DecayTimeMs int `yaml:"decayTimeMs"`
	// SmoothWindowMs smooths the load aperture reacts to (aperture; 5000).
	SmoothWindowMs int `yaml:"smoothWindowMs"`
	// LowLoad and HighLoad are the per-endpoint load thresholds that narrow
	// and widen the aperture (aperture; 0.5 and 2).
	LowLoad  float64 `yaml:"lowLoad"`
	HighLoad float64 `yaml:"highLoad"`
	// MinAperture is the smallest aperture (aperture; default 1).
	MinAperture int `yaml:"minAperture"`
	// EnableProbation is accepted for compatibility; endpoints removed by
	// the namer are dropped once their in-flight requests finish either way.
	EnableProbation bool `yaml:"enableProbation"`

	// FailureAccrual is client.failureAccrual (a sibling key in Linkerd's
	// client block, carried here because the balancer applies it). The zero
	// value means Linkerd's default: 5 consecutive failures, jittered
	// backoff 5s–300s.
	FailureAccrual AccrualOptions `yaml:"-"`
}

// AccrualOptions maps 1:1 to Linkerd's client.failureAccrual object.
type AccrualOptions struct {
	// Kind is io.l5d.consecutiveFailures, io.l5d.successRate,
	// io.l5d.successRateWindowed or none; empty means the default.
	Kind string `yaml:"kind"`
	// Failures is the consecutive failure count that ejects an endpoint.
	Failures int `yaml:"failures"`
	// SuccessRate (0–1) below which an endpoint is ejected.
	SuccessRate float64 `yaml:"successRate"`
	// Requests is the window of the success-rate policy, in requests.
	Requests int `yaml:"requests"`
	// Window is the window of the windowed policy, in seconds.
	Window int `yaml:"window"`
	// Backoff is how long an ejected endpoint stays out before a probe;
	// nil means jittered 5000–300000 ms.
	Backoff *backoff.Options `yaml:"backoff"`
}

// Defaults, as in Linkerd 1.
const (
	DefaultMaxEffort      = 5
	DefaultDecayTimeMs    = 10000
	DefaultSmoothWindowMs = 5000
	DefaultLowLoad        = 0.5
	DefaultHighLoad       = 2
	DefaultMinAperture    = 1
	DefaultFailures       = 5
)

// DefaultAccrualBackoff is failure accrual's default backoff.
var DefaultAccrualBackoff = backoff.Options{Kind: backoff.KindJittered, MinMs: 5000, MaxMs: 300000}

func (o Options) withDefaults() Options {
	if o.Kind == "" {
		o.Kind = KindP2C
	}
	if o.MaxEffort == 0 {
		o.MaxEffort = DefaultMaxEffort
	}
	if o.DecayTimeMs == 0 {
		o.DecayTimeMs = DefaultDecayTimeMs
	}
	if o.SmoothWindowMs == 0 {
		o.SmoothWindowMs = DefaultSmoothWindowMs
	}
	if o.LowLoad == 0 {
		o.LowLoad = DefaultLowLoad
	}
	if o.HighLoad == 0 {
		o.HighLoad = DefaultHighLoad
	}
	if o.MinAperture == 0 {
		o.MinAperture = DefaultMinAperture
	}
	a := &o.FailureAccrual
	if a.Kind == "" {
		a.Kind = AccrualConsecutiveFailures
		if a.Failures == 0 {
			a.Failures = DefaultFailures
		}
	}
	if a.Backoff == nil {
		b := DefaultAccrualBackoff
		a.Backoff = &b
	}
	return o
}

// Validate reports the first invalid field, named as in linkerd.yaml.
func (o Options) Validate() error {
	switch o.Kind {
	case "", KindP2C, KindEWMA, KindAperture, KindHeap, KindRoundRobin:
	default:
		return fmt.Errorf("loadBalancer.kind: unknown kind %q (known: %s)", o.Kind,
			strings.Join([]string{KindP2C, KindEWMA, KindAperture, KindHeap, KindRoundRobin}, ", "))
	}
	switch {
	case o.MaxEffort < 0:
		return fmt.Errorf("loadBalancer.maxEffort: must be > 0, got %d", o.MaxEffort)
	case o.DecayTimeMs < 0:
		return fmt.Errorf("loadBalancer.decayTimeMs: must be > 0, got %d", o.DecayTimeMs)
	case o.SmoothWindowMs < 0:
		return fmt.Errorf("loadBalancer.smoothWindowMs: must be > 0, got %d", o.SmoothWindowMs)
	case o.LowLoad < 0:
		return fmt.Errorf("loadBalancer.lowLoad: must be > 0, got %g", o.LowLoad)
	case o.HighLoad < 0:
		return fmt.Errorf("loadBalancer.highLoad: must be > 0, got %g", o.HighLoad)
	case o.LowLoad != 0 && o.HighLoad != 0 && o.LowLoad >= o.HighLoad:
		return fmt.Errorf("loadBalancer.lowLoad: must be < highLoad (%g), got %g", o.HighLoad, o.LowLoad)
	case o.MinAperture < 0:
		return fmt.Errorf("loadBalancer.minAperture: must be >= 1, got %d", o.MinAperture)
	}
	return o.FailureAccrual.Validate()
}

// Validate reports the first invalid field, named as in linkerd.yaml.
func (a AccrualOptions) Validate() error {
	switch a.Kind {
	case "", AccrualNone:
	case AccrualConsecutiveFailures:
		if a.Failures <= 0 {
			return fmt.Errorf("failureAccrual.failures: required, must be > 0, got %d", a.Failures)
		}
	case AccrualSuccessRate:
		if a.SuccessRate <= 0 || a.SuccessRate > 1 {
			return fmt.Errorf("failureAccrual.successRate: required, must be in (0, 1], got %g", a.SuccessRate)
		}
		if a.Requests <= 0 {
			return fmt.Errorf("failureAccrual.requests: required, must be > 0, got %d", a.Requests)
		}
	case AccrualSuccessRateWindowed:
		if a.SuccessRate <= 0 || a.SuccessRate > 1 {
			return fmt.Errorf("failureAccrual.successRate: required, must be in (0, 1], got %g", a.SuccessRate)
		}
		if a.Window <= 0 {
			return fmt.Errorf("failureAccrual.window: required, must be > 0 seconds, got %d", a.Window)
		}
	default:
		return fmt.Errorf("failureAccrual.kind: unknown kind %q (known: %s, %s, %s, %s)", a.Kind,
			AccrualConsecutiveFailures, AccrualSuccessRate, AccrualSuccessRateWindowed, AccrualNone)
	}
	if a.Backoff != nil {
		if err := a.Backoff.Validate(); err != nil {
			return fmt.Errorf("failureAccrual.%w", err)
		}
	}
	return nil
}
