// Package balancer picks one endpoint of a bound name for each request:
// p2c least-loaded (Linkerd's default), peak EWMA, aperture, heap and round
// robin, plus failure accrual. Per-endpoint state (load, latency, accrual)
// is keyed by address so that it survives when a namer re-publishes the
// same address.
//
// Invariants:
//   - Pick never blocks and does not allocate; the done func it returns is
//     pooled, so it must be called exactly once.
//   - An ejected endpoint receives no traffic until its backoff elapses;
//     then exactly one request (the probe) is let through, and its outcome
//     revives or re-ejects it.
//   - When every endpoint is ejected the balancer still picks among them
//     (Finagle's behaviour): ejection never turns into an outage by itself.
package balancer

import (
	"errors"

	"github.com/linnet-mesh/linnet/internal/naming"
)

// ErrNoEndpoints is returned by Pick when the set is empty or every endpoint
// is unavailable.
var ErrNoEndpoints = errors.New("no endpoints available")

// ErrClosed is returned by Pick after Close.
var ErrClosed = errors.New("balancer closed")

// Balancer chooses endpoints. Implementations are safe for concurrent use.
type Balancer interface {
	// Pick chooses an endpoint for one request. The caller must call the
	// returned done exactly once, when the response (or error) is known,
	// with the outcome: failed=true for a failure as classified by the
	// response classifier or a connection error.
	Pick() (ep *Endpoint, done func(failed bool), err error)
	// Update replaces the endpoint set. State of addresses present before
	// and after is kept; in-flight requests on removed endpoints finish.
	Update(addrs []naming.Address)
	// Endpoints returns the current endpoints (for metrics and admin pages).
	Endpoints() []*Endpoint
	// Close releases timers and probes.
	Close()
}

// Endpoint is one address with its live state. An Endpoint value is
// immutable once published; when a namer re-publishes its address with new
// weight or metadata, a new Endpoint shares the old one's state.
type Endpoint struct {
	naming.Address
	// Key is Address.HostPort(), computed once.
	Key string

	state *endpointState
}

// Pending returns the number of requests in flight on e.
func (e *Endpoint) Pending() int64 { return e.state.pending.Load() }

// Ejected reports whether failure accrual has currently removed e.
func (e *Endpoint) Ejected() bool { return e.state.ejectedUntil.Load() != 0 }
