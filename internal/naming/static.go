package naming

import (
	"errors"
	"sync"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// StaticNamer is an in-memory namer for tests, vectors and the CLI: it
// knows a set of names (the first path element below its prefix) and their
// addresses, and can be changed at run time. A lookup of NAME/REST... where
// NAME is known yields a bound name with id PREFIX/NAME and residual REST;
// any other lookup is negative. All lookups of one path share one Var, and
// each name's address set is one Var shared by all its bound names.
type StaticNamer struct {
	prefix dtab.Path
	fail   bool

	mu      sync.Mutex
	names   map[string]*staticName
	lookups map[string]*staticLookup // by printed path below the prefix
}

type staticName struct {
	state watch.State // Pending, Ok (exists) or Failed
	err   error
	addr  *watch.Var[Addr]
	bound map[string]*Bound // by printed residual, so answers are stable
}

type staticLookup struct {
	path dtab.Path
	v    *watch.Var[watch.Activity[dtab.Tree[Name]]]
}

// NewStaticNamer returns a namer mounted at prefix that knows names, each
// with the given addresses (which may be empty).
func NewStaticNamer(prefix dtab.Path, names map[string][]Address) *StaticNamer {
	n := &StaticNamer{prefix: prefix, names: map[string]*staticName{}, lookups: map[string]*staticLookup{}}
	for name, addrs := range names {
		n.names[name] = &staticName{state: watch.Ok, addr: watch.NewVar(boundAddr(addrs)), bound: map[string]*Bound{}}
	}
	return n
}

// NewFailingNamer returns a namer mounted at prefix whose every lookup
// fails with "error naming <full path>".
func NewFailingNamer(prefix dtab.Path) *StaticNamer {
	return &StaticNamer{prefix: prefix, fail: true, names: map[string]*staticName{}, lookups: map[string]*staticLookup{}}
}

// Prefix returns the path the namer is mounted at.
func (n *StaticNamer) Prefix() dtab.Path { return n.prefix }

func boundAddr(addrs []Address) Addr {
	return Addr{State: AddrBound, Addrs: addrs}
}

// Lookup implements Namer.
func (n *StaticNamer) Lookup(path dtab.Path) Lookup {
	if n.fail {
		full := n.prefix.Concat(path)
		return watch.Const[watch.Activity[dtab.Tree[Name]]]{
			V: watch.FailedActivity[dtab.Tree[Name]](errors.New("error naming " + full.String()))}
	}
	key := path.String()
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.lookups[key]
	if l == nil {
		l = &staticLookup{path: path}
		l.v = watch.NewVar(n.answerLocked(path))
		n.lookups[key] = l
	}
	return l.v
}

// answerLocked computes the current answer for path.
func (n *StaticNamer) answerLocked(path dtab.Path) watch.Activity[dtab.Tree[Name]] {
	if len(path) == 0 {
		return watch.OkActivity(dtab.NegTree[Name]())
	}
	sn := n.names[path[0]]
	if sn == nil {
		return watch.OkActivity(dtab.NegTree[Name]())
	}
	switch sn.state {
	case watch.Pending:
		return watch.PendingActivity[dtab.Tree[Name]]()
	case watch.Failed:
		return watch.FailedActivity[dtab.Tree[Name]](sn.err)
	}
	rest := path[1:]
	rk := rest.String()
	b := sn.bound[rk]
	if b == nil {
		b = &Bound{ID: n.prefix.Concat(path[:1]), Residual: rest, Addr: sn.addr}
		sn.bound[rk] = b
	}
	return watch.OkActivity(dtab.LeafTree(Name{Bound: b}))
}

// update recomputes the answers of every lookup of name and publishes
// those that changed. Called without n.mu held.
func (n *StaticNamer) update(name string, f func(sn *staticName) *staticName) {
	n.mu.Lock()
	before := n.names[name]
	after := f(before)
	if after == nil {
		delete(n.names, name)
	} else {
		n.names[name] = after
	}
	type change struct {
		v *watch.Var[watch.Activity[dtab.Tree[Name]]]
		a watch.Activity[dtab.Tree[Name]]
	}
	var changes []change
	for _, l := range n.lookups {
		if len(l.path) > 0 && l.path[0] == name {
			changes = append(changes, change{l.v, n.answerLocked(l.path)})
		}
	}
	n.mu.Unlock()
	for _, c := range changes {
		c.v.Set(c.a)
	}
}

// Set makes name known with the given addresses. If the name was already
// known, only its address set changes (its bound names stay the same).
func (n *StaticNamer) Set(name string, addrs ...Address) {
	n.mu.Lock()
	sn := n.names[name]
	n.mu.Unlock()
	if sn != nil && sn.state == watch.Ok {
		sn.addr.Set(boundAddr(addrs))
		return
	}
	n.update(name, func(*staticName) *staticName {
		return &staticName{state: watch.Ok, addr: watch.NewVar(boundAddr(addrs)), bound: map[string]*Bound{}}
	})
}

// Delete makes name unknown: its lookups become negative.
func (n *StaticNamer) Delete(name string) {
	n.update(name, func(*staticName) *staticName { return nil })
}

// SetPending makes the lookups of name pending (not known yet).
func (n *StaticNamer) SetPending(name string) {
	n.update(name, func(*staticName) *staticName { return &staticName{state: watch.Pending} })
}

// SetFailed makes the lookups of name fail with err.
func (n *StaticNamer) SetFailed(name string, err error) {
	n.update(name, func(*staticName) *staticName { return &staticName{state: watch.Failed, err: err} })
}

// Subscribers returns the number of live subscriptions to the lookups and
// address sets of this namer (for leak tests).
func (n *StaticNamer) Subscribers() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := 0
	for _, l := range n.lookups {
		total += l.v.Subscribers()
	}
	for _, sn := range n.names {
		if sn.addr != nil {
			total += sn.addr.Subscribers()
		}
	}
	return total
}
