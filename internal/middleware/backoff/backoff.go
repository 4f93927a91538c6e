// Package backoff implements Linkerd's backoff objects (constant and
// jittered) shared by failure accrual and retries. It depends on the
// standard library only, so both the balancer and the middleware layers
// may import it.
package backoff

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Options is a Linkerd backoff object: {kind: constant, ms} or
// {kind: jittered, minMs, maxMs}.
type Options struct {
	Kind  string `yaml:"kind"`
	Ms    int    `yaml:"ms"`
	MinMs int    `yaml:"minMs"`
	MaxMs int    `yaml:"maxMs"`
}

// Backoff kinds.
const (
	KindConstant = "constant"
	KindJittered = "jittered"
)

// Validate reports the first invalid field.
func (o Options) Validate() error {
	switch o.Kind {
	case KindConstant:
		if o.Ms < 0 {
			return fmt.Errorf("backoff.ms: must be >= 0, got %d", o.Ms)
		}
	case KindJittered:
		if o.MinMs <= 0 {
			return fmt.Errorf("backoff.minMs: must be > 0, got %d", o.MinMs)
		}
		if o.MaxMs < o.MinMs {
			return fmt.Errorf("backoff.maxMs: must be >= minMs (%d), got %d", o.MinMs, o.MaxMs)
		}
	default:
		return fmt.Errorf("backoff.kind: unknown kind %q (known: constant, jittered)", o.Kind)
	}
	return nil
}

// Policy produces independent backoff streams.
type Policy struct{ o Options }

// New validates o and returns its policy.
func New(o Options) (Policy, error) {
	if err := o.Validate(); err != nil {
		return Policy{}, err
	}
	return Policy{o: o}, nil
}

// Constant returns a policy that always waits d.
func Constant(d time.Duration) Policy {
	return Policy{o: Options{Kind: KindConstant, Ms: int(d / time.Millisecond)}}
}

// Stream is one sequence of waits, e.g. for one ejected endpoint or one
// request's retries. Not safe for concurrent use; the zero Stream waits 0.
type Stream struct {
	o    Options
	prev time.Duration
}

// Stream starts a new sequence.
func (p Policy) Stream() Stream { return Stream{o: p.o} }

// Options returns the options the policy was made from.
func (p Policy) Options() Options { return p.o }

// Next returns the next wait. Jittered backoff is "decorrelated jitter"
// (as in Finagle's Backoff.decorrelatedJittered): the first wait is minMs,
// then each is uniform in [min, 3*previous] capped at maxMs.
func (s *Stream) Next() time.Duration {
	switch s.o.Kind {
	case KindConstant:
		return time.Duration(s.o.Ms) * time.Millisecond
	case KindJittered:
		lo := time.Duration(s.o.MinMs) * time.Millisecond
		hi := time.Duration(s.o.MaxMs) * time.Millisecond
		if s.prev == 0 {
			s.prev = lo
			return lo
		}
		top := min(3*s.prev, hi)
		d := lo
		if top > lo {
			d = lo + rand.N(top-lo+1)
		}
		s.prev = d
		return d
	}
	return 0
}

// Reset restarts the sequence.
func (s *Stream) Reset() { s.prev = 0 }
