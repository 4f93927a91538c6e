package namerd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Reads of one dtab (GET and HEAD /api/1/dtabs/<ns>) ask the store, so that
// a client reads its own writes. When the store cannot answer (ZooKeeper,
// etcd or Consul down) and namerd watches the namespace anyway — a router,
// namerctl or the thrift/mesh interface is subscribed, so the store's
// observation holds the current dtab — the read answers from that live
// copy, as Linkerd's namerd served its observed dtabs. Without a live
// watch it fails fast with 503.
const (
	// liveReadBudget bounds asking the store when a live copy can answer.
	liveReadBudget = time.Second
	// coldReadBudget bounds asking the store when nothing else can answer.
	coldReadBudget = 2 * time.Second
)

// connectionStatus is implemented by stores that know whether their
// backend is reachable (io.l5d.zk): when it is not, reads do not wait for
// it.
type connectionStatus interface {
	ConnectionStatus() (ok bool, reason string)
}

// liveStore is a Store that counts the subscriptions to each namespace's
// observation, so that reads can tell whether the observation is live (kept
// current by the store's watch) rather than a cold Get. Every part of
// namerd observes the store through it.
type liveStore struct {
	storage.Store
	mu   sync.Mutex
	refs map[string]int
}

// trackWatches wraps s, unless it is wrapped already.
func trackWatches(s storage.Store) *liveStore {
	if l, ok := s.(*liveStore); ok {
		return l
	}
	return &liveStore{Store: s, refs: map[string]int{}}
}

// Observe implements storage.Store.
func (s *liveStore) Observe(ns string) watch.Value[watch.Activity[storage.Observation]] {
	return liveValue{s: s, ns: ns, v: s.Store.Observe(ns)}
}

// live returns the namespace's observed state when a subscription keeps it
// current and the store knows it (nil: absent).
func (s *liveStore) live(ns string) (storage.Observation, bool) {
	s.mu.Lock()
	n := s.refs[ns]
	s.mu.Unlock()
	if n == 0 {
		return nil, false
	}
	a := s.Store.Observe(ns).Get()
	return a.Value, a.State == watch.Ok
}

// down reports whether the backend is known to be unreachable, and why.
func (s *liveStore) down() (bool, string) {
	cs, ok := s.Store.(connectionStatus)
	if !ok {
		return false, ""
	}
	up, why := cs.ConnectionStatus()
	return !up, why
}

type liveValue struct {
	s  *liveStore
	ns string
	v  watch.Value[watch.Activity[storage.Observation]]
}

func (x liveValue) Get() watch.Activity[storage.Observation] { return x.v.Get() }

func (x liveValue) Subscribe(f func(watch.Activity[storage.Observation])) func() {
	x.s.mu.Lock()
	x.s.refs[x.ns]++
	x.s.mu.Unlock()
	cancel := x.v.Subscribe(f)
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			x.s.mu.Lock()
			if x.s.refs[x.ns]--; x.s.refs[x.ns] == 0 {
				delete(x.s.refs, x.ns)
			}
			x.s.mu.Unlock()
		})
	}
}

// UnavailableError is a read the store could not answer in time and namerd
// had no live copy for: the API answers 503 with its text.
type UnavailableError struct {
	Namespace string
	Err       error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("dtab %q: storage unavailable (no watch of the namespace holds its dtab): %v", e.Namespace, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// currentDtab returns the namespace's current dtab: the store's answer, or the
// live copy when the store is down or does not answer within
// liveReadBudget. ErrNotFound when absent; *UnavailableError when neither
// can answer.
func (c *Controller) currentDtab(ctx context.Context, ns string) (storage.VersionedDtab, error) {
	if down, why := c.store.down(); down {
		if obs, ok := c.store.live(ns); ok {
			return c.fromLive(obs)
		}
		return storage.VersionedDtab{}, &UnavailableError{Namespace: ns, Err: errors.New(why)}
	}
	budget := c.coldRead
	if _, live := c.store.live(ns); live {
		budget = c.liveRead
	}
	rctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	v, err := c.store.Get(rctx, ns)
	if err == nil || semantic(err) || ctx.Err() != nil {
		return v, err
	}
	// The copy as it is now: the watch may have moved on (or ended) while
	// the store was asked.
	if obs, ok := c.store.live(ns); ok {
		c.log.Debug("dtab read answered from the live watch", "namespace", ns, "err", err)
		return c.fromLive(obs)
	}
	if rctx.Err() != nil || unreachable(err) {
		if rctx.Err() != nil {
			err = fmt.Errorf("no answer within %v: %w", budget, err)
		}
		return storage.VersionedDtab{}, &UnavailableError{Namespace: ns, Err: err}
	}
	return v, err
}

// fromLive answers a read from a watch's copy (nil: absent).
func (c *Controller) fromLive(obs storage.Observation) (storage.VersionedDtab, error) {
	c.liveReads.Inc()
	if obs == nil {
		return storage.VersionedDtab{}, storage.ErrNotFound
	}
	return *obs, nil
}

// semantic reports whether err is an answer of the store (the namespace is
// missing, refused...) rather than a failure to get one.
func semantic(err error) bool {
	return errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrForbidden) ||
		errors.Is(err, storage.ErrInvalidNamespace)
}

// unreachable reports whether err says the backend could not be reached.
func unreachable(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout())
}
