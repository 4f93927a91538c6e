package curator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

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
	if !addrEqual(s.addr.Get(), a) {
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

// run watches the service until ctx ends; a break (request failure,
// session expired) starts over after a pause that grows while ZooKeeper
// fails.
func (s *service) run(ctx context.Context) {
	const minPause, maxPause = 100 * time.Millisecond, 5 * time.Second
	pause := minPause
	for ctx.Err() == nil {
		synced, err := s.sync(ctx)
		if ctx.Err() != nil {
			return
		}
		if synced {
			pause = minPause
		}
		if err == nil {
			continue // the znode appeared or went: read it again now
		}
		s.fail(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}

// event is a fired watch: of the service's children (instance == ""), or
// of one instance's data, registered as generation gen.
type event struct {
	instance string
	gen      uint64
	ev       zk.Event
}

type syncer struct {
	s         *service
	ctx       context.Context
	events    chan event
	gen       uint64
	gens      map[string]uint64 // live data watch of each instance
	instances map[string][]naming.Address
	bad       map[string]string // instances whose data is unusable, and why
}

func (y *syncer) forward(instance string, gen uint64, w zk.Watch) {
	go func() {
		select {
		case ev, ok := <-w:
			if !ok {
				return
			}
			select {
			case y.events <- event{instance, gen, ev}:
			case <-y.ctx.Done():
			}
		case <-y.ctx.Done():
		}
	}()
}

// sync reads the service's instances with watches and follows their
// events until the znode is created or deleted (nil error: start over),
// or a watch or request fails. synced reports whether an answer was
// published.
func (s *service) sync(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cli := s.n.cli
	y := &syncer{s: s, ctx: ctx, events: make(chan event, 16), gens: map[string]uint64{}, instances: map[string][]naming.Address{}, bad: map[string]string{}}
	names, cw, err := cli.ChildrenW(ctx, s.path)
	if errors.Is(err, zk.ErrNoNode) {
		exists, ew, err := cli.ExistsW(ctx, s.path)
		if err != nil {
			return false, err
		}
		if exists {
			return true, nil
		}
		s.publish(nil)
		return true, y.wait(ew)
	}
	if err != nil {
		return false, err
	}
	y.forward("", 0, cw)
	for _, name := range names {
		if err := y.read(name); err != nil {
			return false, err
		}
	}
	y.publish()
	for {
		var e event
		select {
		case <-ctx.Done():
			return true, nil
		case <-cli.Changed():
			s.connectionChanged()
			continue
		case e = <-y.events:
		}
		if e.ev.Type == zk.EventNotWatching {
			return true, fmt.Errorf("watch ended: %v", e.ev.Err)
		}
		if e.instance == "" {
			if e.ev.Type == zk.EventNodeDeleted {
				return true, nil
			}
			names, cw, err := cli.ChildrenW(ctx, s.path)
			if errors.Is(err, zk.ErrNoNode) {
				return true, nil
			}
			if err != nil {
				return true, err
			}
			y.forward("", 0, cw)
			for name := range y.gens {
				if !slices.Contains(names, name) {
					y.forget(name)
				}
			}
			for _, name := range names {
				if _, known := y.gens[name]; !known {
					if err := y.read(name); err != nil {
						return true, err
					}
				}
			}
			y.publish()
			continue
		}
		if y.gens[e.instance] != e.gen {
			continue // an instance the syncer has forgotten
		}
		y.forget(e.instance)
		if err := y.read(e.instance); err != nil {
			return true, err
		}
		y.publish()
	}
}

// wait waits for the watch of a missing znode (or for ctx).
func (y *syncer) wait(w zk.Watch) error {
	for {
		select {
		case <-y.ctx.Done():
			return nil
		case <-y.s.n.cli.Changed():
			y.s.connectionChanged()
		case ev, ok := <-w:
			if ok && ev.Type == zk.EventNotWatching {
				return fmt.Errorf("watch ended: %v", ev.Err)
			}
			return nil
		}
	}
}

// connectionChanged shows (or clears) the connection failure while the
// service keeps its last answer.
func (s *service) connectionChanged() {
	ok, why := s.n.cli.Status()
	if ok {
		s.mu.Lock()
		s.shownErr = ""
		s.mu.Unlock()
		return
	}
	s.fail(fmt.Errorf("zookeeper %s: %s", s.n.cli.Servers(), why))
}

func (y *syncer) forget(name string) {
	delete(y.gens, name)
	delete(y.instances, name)
	delete(y.bad, name)
}

// read reads an instance znode with a data watch. An instance whose data
// is unusable is left out and logged, not fatal.
func (y *syncer) read(name string) error {
	n, w, err := y.s.n.cli.GetW(y.ctx, y.s.path+"/"+name)
	if errors.Is(err, zk.ErrNoNode) {
		return nil // gone already; the children watch tells
	}
	if err != nil {
		return err
	}
	y.gen++
	y.gens[name] = y.gen
	y.forward(name, y.gen, w)
	addrs, err := y.parse(n.Data)
	if err != nil {
		if msg := err.Error(); y.bad[name] != msg {
			y.bad[name] = msg
			y.s.n.log.Warn(Kind+": instance left out", "znode", y.s.path+"/"+name, "err", err)
		}
		return nil
	}
	delete(y.bad, name)
	y.instances[name] = addrs
	return nil
}

func (y *syncer) parse(data []byte) ([]naming.Address, error) {
	in, err := ParseInstance(data)
	if err != nil {
		return nil, err
	}
	return y.s.n.addresses(y.ctx, in)
}

func (y *syncer) publish() { y.s.publish(maps.Clone(y.instances)) }

func addrEqual(a, b naming.Addr) bool {
	if a.State != b.State || len(a.Addrs) != len(b.Addrs) {
		return false
	}
	if (a.Err == nil) != (b.Err == nil) || (a.Err != nil && a.Err.Error() != b.Err.Error()) {
		return false
	}
	for i := range a.Addrs {
		x, y := a.Addrs[i], b.Addrs[i]
		if x.Host != y.Host || x.Port != y.Port || x.Weight != y.Weight || fmt.Sprint(x.Meta) != fmt.Sprint(y.Meta) {
			return false
		}
	}
	return true
}
