package serversets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
	"github.com/linnet-mesh/linnet/internal/zk"
)

// node is one watched znode (a serverset or a leader group), shared by
// every lookup that reads it while any of them is watched.
type node struct {
	n      *Namer
	path   string
	status *watch.Var[naming.NameStatus]

	loop naming.SharedLoop

	mu       sync.Mutex
	st       naming.NameStatus                  // what status publishes, set first under mu
	addrs    map[string]*watch.Var[naming.Addr] // by endpoint name
	members  map[string]*memberInfo             // as last published
	shownErr string                             // the failure keeping the last answer, while it lasts
	lastLog  string
}

// Hold counts a watcher; the first one starts the znode's watch loop.
func (nd *node) Hold() {
	naming.HoldIn(&nd.loop, &nd.n.loops, nd.run, &nd.n.mu, nd.n.nodes, nd.path, nd)
}

// Unhold undoes Hold; the last one stops the loop and forgets the node.
func (nd *node) Unhold() {
	naming.UnholdIn(&nd.loop, &nd.n.mu, nd.n.nodes, nd.path, nd)
}

// addrVar returns the address set of one endpoint of the znode.
func (nd *node) addrVar(endpoint string) *watch.Var[naming.Addr] {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if v := nd.addrs[endpoint]; v != nil {
		return v
	}
	v := watch.NewVar(nd.addrLocked(nd.st, endpoint))
	nd.addrs[endpoint] = v
	return v
}

func (nd *node) addrLocked(st naming.NameStatus, endpoint string) naming.Addr {
	switch st.State {
	case naming.NameBound:
		// As Finagle's zk2 resolver: no live member (with that endpoint) is
		// negative, so that dtab fall-backs apply.
		addrs := nd.n.addresses(nd.members, endpoint)
		if len(addrs) == 0 {
			return naming.Addr{State: naming.AddrNeg}
		}
		return naming.Addr{State: naming.AddrBound, Addrs: addrs}
	case naming.NameNeg:
		return naming.Addr{State: naming.AddrNeg}
	case naming.NameFailed:
		return naming.Addr{State: naming.AddrFailed, Err: st.Err}
	}
	return naming.Addr{State: naming.AddrPending}
}

// publish makes members (nil: the znode does not exist) the node's
// answer: address sets first, so that a name turning bound is bound to
// its current set; each only when it changed.
func (nd *node) publish(members map[string]*memberInfo) {
	st := naming.NameStatus{State: naming.NameBound}
	if members == nil {
		st.State = naming.NameNeg
	}
	nd.mu.Lock()
	nd.st = st
	nd.members = members
	nd.shownErr, nd.lastLog = "", ""
	type upd struct {
		v *watch.Var[naming.Addr]
		a naming.Addr
	}
	var ups []upd
	for ep, v := range nd.addrs {
		a := nd.addrLocked(st, ep)
		if !addrEqual(v.Get(), a) {
			ups = append(ups, upd{v, a})
		}
	}
	nd.mu.Unlock()
	for _, u := range ups {
		u.v.Set(u.a)
	}
	if nd.status.Get().State != st.State {
		nd.status.Set(st)
	}
}

// fail records a ZooKeeper failure: the last answer stays (a namer must
// not drop a serving set because its registry blinked) and the error is
// shown on the state page and logged once; a znode never resolved fails.
func (nd *node) fail(err error) {
	nd.n.failures.Inc()
	msg := err.Error()
	nd.mu.Lock()
	nd.shownErr = msg
	logIt := msg != nd.lastLog
	nd.lastLog = msg
	old := nd.st
	if logIt {
		nd.n.log.Warn(nd.n.kind+": cannot read znode; keeping the last answer", "znode", nd.path, "err", err)
	}
	st := naming.NameStatus{State: naming.NameFailed, Err: fmt.Errorf("%s %s: %w", nd.n.kind, nd.path, err)}
	if old.State == naming.NameNeg || old.State == naming.NameBound || (old.State == naming.NameFailed && old.Err.Error() == st.Err.Error()) {
		nd.mu.Unlock()
		return
	}
	nd.st = st
	var vars []*watch.Var[naming.Addr]
	for _, v := range nd.addrs {
		vars = append(vars, v)
	}
	nd.mu.Unlock()
	for _, v := range vars {
		v.Set(naming.Addr{State: naming.AddrFailed, Err: st.Err})
	}
	nd.status.Set(st)
}

// run watches the znode until ctx ends; a break (request failure, session
// expired) starts over after a pause that grows while ZooKeeper fails.
func (nd *node) run(ctx context.Context) {
	const minPause, maxPause = 100 * time.Millisecond, 5 * time.Second
	pause := minPause
	for ctx.Err() == nil {
		synced, err := nd.sync(ctx)
		if ctx.Err() != nil {
			return
		}
		if synced {
			pause = minPause
		}
		if err == nil {
			continue // the znode appeared or went: read it again now
		}
		nd.fail(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}

// event is a fired watch: of the znode's children (member == ""), or of
// one member's data, registered as generation gen.
type event struct {
	member string
	gen    uint64
	ev     gozk.Event
}

type syncer struct {
	nd      *node
	ctx     context.Context
	events  chan event
	gen     uint64
	gens    map[string]uint64 // live data watch of each member
	members map[string]*memberInfo
	bad     map[string]string // members whose data is unusable, and why
}

func (s *syncer) forward(member string, gen uint64, w zk.Watch) {
	go func() {
		select {
		case ev, ok := <-w:
			if !ok {
				return
			}
			select {
			case s.events <- event{member, gen, ev}:
			case <-s.ctx.Done():
			}
		case <-s.ctx.Done():
		}
	}()
}

// sync reads the znode's members with watches and follows their events
// until the znode is created or deleted (nil error: start over), or a
// watch or request fails. synced reports whether an answer was published.
func (nd *node) sync(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cli := nd.n.cli
	s := &syncer{nd: nd, ctx: ctx, events: make(chan event, 16), gens: map[string]uint64{}, members: map[string]*memberInfo{}, bad: map[string]string{}}
	names, cw, err := cli.ChildrenW(ctx, nd.path)
	if errors.Is(err, gozk.ErrNoNode) {
		exists, ew, err := cli.ExistsW(ctx, nd.path)
		if err != nil {
			return false, err
		}
		if exists {
			return true, nil
		}
		nd.publish(nil)
		return true, s.wait(ew)
	}
	if err != nil {
		return false, err
	}
	s.forward("", 0, cw)
	for _, name := range names {
		if err := s.read(name); err != nil {
			return false, err
		}
	}
	s.publish()
	for {
		var e event
		select {
		case <-ctx.Done():
			return true, nil
		case <-cli.Changed():
			nd.connectionChanged()
			continue
		case e = <-s.events:
		}
		if e.ev.Type == gozk.EventNotWatching {
			return true, fmt.Errorf("watch ended: %v", e.ev.Err)
		}
		if e.member == "" {
			if e.ev.Type == gozk.EventNodeDeleted {
				return true, nil
			}
			names, cw, err := cli.ChildrenW(ctx, nd.path)
			if errors.Is(err, gozk.ErrNoNode) {
				return true, nil
			}
			if err != nil {
				return true, err
			}
			s.forward("", 0, cw)
			for name := range s.gens {
				if !slices.Contains(names, name) {
					s.forget(name)
				}
			}
			for _, name := range names {
				if _, known := s.gens[name]; !known {
					if err := s.read(name); err != nil {
						return true, err
					}
				}
			}
			s.publish()
			continue
		}
		if s.gens[e.member] != e.gen {
			continue // a member the syncer has forgotten
		}
		s.forget(e.member)
		if err := s.read(e.member); err != nil {
			return true, err
		}
		s.publish()
	}
}

// wait waits for the watch of a missing znode (or for ctx).
func (s *syncer) wait(w zk.Watch) error {
	for {
		select {
		case <-s.ctx.Done():
			return nil
		case <-s.nd.n.cli.Changed():
			s.nd.connectionChanged()
		case ev, ok := <-w:
			if ok && ev.Type == gozk.EventNotWatching {
				return fmt.Errorf("watch ended: %v", ev.Err)
			}
			return nil
		}
	}
}

// connectionChanged shows (or clears) the connection failure while the
// node keeps its last answer.
func (nd *node) connectionChanged() {
	ok, why := nd.n.cli.Status()
	if ok {
		nd.mu.Lock()
		nd.shownErr = ""
		nd.mu.Unlock()
		return
	}
	nd.fail(fmt.Errorf("zookeeper %s: %s", nd.n.cli.Servers(), why))
}

func (s *syncer) forget(name string) {
	delete(s.gens, name)
	delete(s.members, name)
	delete(s.bad, name)
}

// read reads a member znode with a data watch. Children that are not
// members (no member_<seq> name) are ignored; a member whose data is
// unusable is left out and logged, not fatal.
func (s *syncer) read(name string) error {
	seq, ok := memberSeq(name)
	if !ok {
		return nil
	}
	n, w, err := s.nd.n.cli.GetW(s.ctx, s.nd.path+"/"+name)
	if errors.Is(err, gozk.ErrNoNode) {
		return nil // gone already; the children watch tells
	}
	if err != nil {
		return err
	}
	s.gen++
	s.gens[name] = s.gen
	s.forward(name, s.gen, w)
	m, err := s.nd.n.parse(s.ctx, name, seq, n.Data)
	if err != nil {
		if msg := err.Error(); s.bad[name] != msg {
			s.bad[name] = msg
			s.nd.n.log.Warn(s.nd.n.kind+": member left out", "znode", s.nd.path+"/"+name, "err", err)
		}
		return nil
	}
	delete(s.bad, name)
	s.members[name] = m
	return nil
}

func (s *syncer) publish() {
	members := make(map[string]*memberInfo, len(s.members))
	for k, v := range s.members {
		members[k] = v
	}
	s.nd.publish(members)
}

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
