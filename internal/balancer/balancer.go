// Package balancer picks one endpoint of a bound name for each request:
// p2c least-loaded (Linkerd's default), peak EWMA, aperture, heap and round
// robin, plus failure accrual. Per-endpoint state (load, latency, accrual)
// is keyed by address so that it survives when a namer re-publishes the
// same address.
package balancer

import (
	"errors"
	"time"

	"github.com/linnet-mesh/linnet/internal/naming"
)

// ErrNoEndpoints is returned by Pick when the set is empty or every endpoint
// is unavailable.
var ErrNoEndpoints = errors.New("no endpoints available")

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

// Endpoint is one address with its live state.
type Endpoint struct {
	naming.Address
	// Key is Address.HostPort(), computed once.
	Key string

	state endpointState
}

// Done records the outcome of a request on e; balancers wrap it.
type endpointState struct {
	created time.Time
}
