package serversets

import (
	"context"
	"fmt"
	"sync"

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
		if !naming.AddrEqual(v.Get(), a) {
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

// run watches the znode until ctx ends: its member_<seq> children and
// their data, each parsed as a serverset member (other children are not
// members and are ignored).
func (nd *node) run(ctx context.Context) {
	w := &zk.ChildrenWatch[*memberInfo]{
		Client: nd.n.cli,
		Path:   nd.path,
		Accept: func(name string) bool {
			_, ok := memberSeq(name)
			return ok
		},
		Parse: func(ctx context.Context, name string, data []byte) (*memberInfo, error) {
			seq, _ := memberSeq(name)
			return nd.n.parse(ctx, name, seq, data)
		},
		Publish: nd.publish,
		LeftOut: func(name string, err error) {
			nd.n.log.Warn(nd.n.kind+": member left out", "znode", nd.path+"/"+name, "err", err)
		},
		Fail:        nd.fail,
		Reconnected: nd.reconnected,
	}
	w.Run(ctx)
}

// reconnected clears the connection failure shown while the node keeps
// its last answer.
func (nd *node) reconnected() {
	nd.mu.Lock()
	nd.shownErr = ""
	nd.mu.Unlock()
}
