package curator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
	"github.com/linnet-mesh/linnet/internal/zk"
)

// service is one watched service znode (<basePath>/<name>), shared by
// every lookup that reads it while any of them is watched.
type service struct {
	n      *Namer
	path   string
	status *watch.Var[naming.NameStatus]
	addr   *watch.Var[naming.Addr]

	loop naming.SharedLoop

	mu        sync.Mutex
	st        naming.NameStatus
	instances map[string][]naming.Address // by instance znode name, as last published
	shownErr  string                      // the failure keeping the last answer, while it lasts
	lastLog   string
}

// Hold counts a watcher; the first one starts the service's watch loop.
func (s *service) Hold() {
	naming.HoldIn(&s.loop, &s.n.loops, s.run, &s.n.mu, s.n.services, s.path, s)
}

// Unhold undoes Hold; the last one stops the loop and forgets the service.
func (s *service) Unhold() {
	naming.UnholdIn(&s.loop, &s.n.mu, s.n.services, s.path, s)
}

// publish makes instances (nil: the znode does not exist) the answer: the
// address set first, so that a name turning bound is bound to its current
// set; each only when it changed. No usable instance is negative.
func (s *service) publish(instances map[string][]naming.Address) {
	var all []naming.Address
	for _, k := range slices.Sorted(maps.Keys(instances)) {
		all = append(all, instances[k]...)
	}
	all = sortAddrs(all)
	st := naming.NameStatus{State: naming.NameBound}
	a := naming.Addr{State: naming.AddrBound, Addrs: all}
	if len(all) == 0 {
		st, a = naming.NameStatus{State: naming.NameNeg}, naming.Addr{State: naming.AddrNeg}
	}
	s.mu.Lock()
	s.st = st
	s.instances = instances
	s.shownErr, s.lastLog = "", ""
	s.mu.Unlock()
	if !naming.AddrEqual(s.addr.Get(), a) {
		s.addr.Set(a)
	}
	if s.status.Get().State != st.State {
		s.status.Set(st)
	}
}

// fail records a ZooKeeper failure: the last answer stays (a namer must
// not drop a serving set because its registry blinked) and the error is
// shown on the state page and logged once; a service never resolved fails.
func (s *service) fail(err error) {
	s.n.failures.Inc()
	msg := err.Error()
	s.mu.Lock()
	s.shownErr = msg
	logIt := msg != s.lastLog
	s.lastLog = msg
	old := s.st
	if logIt {
		s.n.log.Warn(Kind+": cannot read service; keeping the last answer", "znode", s.path, "err", err)
	}
	st := naming.NameStatus{State: naming.NameFailed, Err: fmt.Errorf("%s %s: %w", Kind, s.path, err)}
	if old.State == naming.NameNeg || old.State == naming.NameBound || (old.State == naming.NameFailed && old.Err.Error() == st.Err.Error()) {
		s.mu.Unlock()
		return
	}
	s.st = st
	s.mu.Unlock()
	s.addr.Set(naming.Addr{State: naming.AddrFailed, Err: st.Err})
	s.status.Set(st)
}

// run watches the service until ctx ends: its instance znodes and their
// data, each parsed as a ServiceInstance.
func (s *service) run(ctx context.Context) {
	w := &zk.ChildrenWatch[[]naming.Address]{
		Client: s.n.cli,
		Path:   s.path,
		Parse: func(ctx context.Context, _ string, data []byte) ([]naming.Address, error) {
			in, err := ParseInstance(data)
			if err != nil {
				return nil, err
			}
			return s.n.addresses(ctx, in)
		},
		Publish: s.publish,
		LeftOut: func(name string, err error) {
			s.n.log.Warn(Kind+": instance left out", "znode", s.path+"/"+name, "err", err)
		},
		Fail:        s.fail,
		Reconnected: s.reconnected,
	}
	w.Run(ctx)
}

// reconnected clears the connection failure shown while the service
// keeps its last answer.
func (s *service) reconnected() {
	s.mu.Lock()
	s.shownErr = ""
	s.mu.Unlock()
}
