package router

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/linnet-mesh/linnet/internal/balancer"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// leastLoaded is the router's fallback balancer (used when the client
// policy names none): power of two choices over outstanding requests.
type leastLoaded struct {
	mu   sync.RWMutex
	eps  []*llEndpoint
	byID map[string]*llEndpoint
}

type llEndpoint struct {
	ep     *balancer.Endpoint
	load   atomic.Int64
	doneFn func(bool) // e.done, bound once so Pick does not allocate
}

func newLeastLoaded() *leastLoaded { return &leastLoaded{byID: map[string]*llEndpoint{}} }

func (l *leastLoaded) Pick() (*balancer.Endpoint, func(bool), error) {
	l.mu.RLock()
	eps := l.eps
	l.mu.RUnlock()
	var e *llEndpoint
	switch n := len(eps); n {
	case 0:
		return nil, nil, balancer.ErrNoEndpoints
	case 1:
		e = eps[0]
	default:
		a, b := rand.IntN(n), rand.IntN(n-1)
		if b >= a {
			b++
		}
		e = eps[a]
		if eps[b].load.Load() < e.load.Load() {
			e = eps[b]
		}
	}
	e.load.Add(1)
	return e.ep, e.doneFn, nil
}

func (e *llEndpoint) done(bool) { e.load.Add(-1) }

func (l *leastLoaded) Update(addrs []naming.Address) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := make(map[string]*llEndpoint, len(addrs))
	eps := make([]*llEndpoint, 0, len(addrs))
	for _, a := range addrs {
		k := a.HostPort()
		if _, dup := next[k]; dup {
			continue
		}
		e := l.byID[k]
		if e == nil {
			e = &llEndpoint{ep: &balancer.Endpoint{Address: a, Key: k}}
			e.doneFn = e.done
		}
		next[k] = e
		eps = append(eps, e)
	}
	l.byID, l.eps = next, eps
}

func (l *leastLoaded) Endpoints() []*balancer.Endpoint {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*balancer.Endpoint, len(l.eps))
	for i, e := range l.eps {
		out[i] = e.ep
	}
	return out
}

func (l *leastLoaded) Close() {}

var _ balancer.Balancer = (*leastLoaded)(nil)
