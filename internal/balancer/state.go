package balancer

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
)

// endpointState is the per-address state that survives namer updates.
// Fields read by Pick are atomics; accrual transitions hold mu.
type endpointState struct {
	created time.Time

	pending atomic.Int64
	// ejectedUntil is 0 while the endpoint is alive, otherwise the
	// clock.Mono time after which one probe may be sent.
	ejectedUntil atomic.Int64
	// probing is set while the single probe request is in flight.
	probing atomic.Bool

	// Peak EWMA of latency in nanoseconds (float64 bits) and its stamp.
	cost  atomic.Uint64
	stamp atomic.Int64

	mu      sync.Mutex
	policy  policy
	backoff backoff.Stream
}

func (s *endpointState) load(now int64, tau float64, ewma bool) float64 {
	p := float64(s.pending.Load())
	if !ewma {
		return p
	}
	c := math.Float64frombits(s.cost.Load())
	if c == 0 {
		if p == 0 {
			return 0
		}
		// Unmeasured but busy: keep it unattractive until a response
		// arrives (Finagle's P2CPeakEwma penalty).
		return penalty + p
	}
	// Decay toward zero since the last observation, as an observation of 0
	// would (Finagle's Metric.get), without writing it back.
	if td := float64(now - s.stamp.Load()); td > 0 {
		c *= math.Exp(-td / tau)
	}
	return c * (p + 1)
}

// penalty is the cost of an endpoint with requests in flight and no
// latency sample yet: above any plausible latency (in ns) times load.
const penalty = float64(math.MaxInt64 >> 16)

// observe folds one round-trip time into the peak EWMA.
func (s *endpointState) observe(now, rtt int64, tau float64) {
	for {
		old := s.cost.Load()
		c := math.Float64frombits(old)
		r := float64(rtt)
		if r > c {
			c = r
		} else {
			td := float64(now - s.stamp.Load())
			w := math.Exp(-max(td, 0) / tau)
			c = c*w + r*(1-w)
		}
		if s.cost.CompareAndSwap(old, math.Float64bits(c)) {
			s.stamp.Store(now)
			return
		}
	}
}
