package transformers

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// bindLive returns the replacement of a /#/ path for io.l5d.replace or
// io.l5d.const: one bound name, id /%/<kind> followed by the path, whose
// address set is derived, live, from binding the path with an empty dtab
// through the process's namers (env.Namers, each with its own
// transformers, and the /$/ system namers), as Linkerd binds it through
// its global interpreter of the configured namers.
//
// Binding such a path is a watch, not a startup computation: the namer's
// answer changes (a k8s service appears, an fs file is removed) and so do
// its address sets. Rather than a tree whose shape would have to change
// under the interpreter that applied the transformer, the replacement is
// a single bound name whose address set follows everything: the namer's
// address-set changes, and its Neg/bound transitions (a negative answer
// is a negative address set, which the router reports as "does not
// exist"; pending and failed answers likewise). So every interpreter that
// applies transformers (the default one, namerd's, the delegator) gets a
// live result from a plain Transform call, and one client serves it.
//
// The namers are watched only while someone watches the address set (the
// router's client for the bound name, or a delegator sample): the last
// one to stop watching stops the binding and the namers' watches.
func bindLive(kind, text string, p dtab.Path, namers []naming.MountedNamer) (*naming.Bound, error) {
	if err := checkMounted(text, p, namers); err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	return &naming.Bound{
		ID: dtab.Path{"%", kind}.Concat(p),
		Addr: &liveAddr{
			bind: naming.NewInterpreter(namers).Bind(nil, p),
			path: text,
			out:  watch.NewVar(naming.Addr{State: naming.AddrPending}),
		},
	}, nil
}

// checkMounted reports a path under /#/ that no configured namer serves:
// without one it could only ever bind to nothing.
func checkMounted(text string, p dtab.Path, namers []naming.MountedNamer) error {
	for _, m := range namers {
		if p.HasPrefix(m.Prefix) {
			return nil
		}
	}
	if len(namers) == 0 {
		return config.FieldError("path", "%q names a namer, but none is available here: /#/ paths bind through the top-level `namers:` list, which is empty (in a namer's own `transformers:`, %s)",
			text, config.Unsupported("binding a /#/ path"))
	}
	mounted := make([]string, len(namers))
	for i, m := range namers {
		mounted[i] = m.Prefix.String()
	}
	return config.FieldError("path", "%q: no configured namer is mounted at /#/%s (namers are mounted at %s)", text, p[1], strings.Join(mounted, ", "))
}

// liveAddr is the address set of what a path binds to (see bindLive).
// The first subscriber starts the binding's watch, the last one stops it.
type liveAddr struct {
	bind naming.Binding
	path string // for errors
	out  *watch.Var[naming.Addr]

	life     sync.Mutex // serialises starting and stopping
	refs     atomic.Int32
	stopBind func() // guarded by life

	mu       sync.Mutex // guards the fields below
	gen      uint64     // bumped by each stop: callbacks of an older watch are ignored
	settling bool       // onTree is subscribing to leaves: it publishes when done
	tree     watch.Activity[naming.BoundTree]
	leaves   map[*naming.Bound]*leafWatch

	pub sync.Mutex // one publication at a time, so the newest value is the one kept
}

// leafWatch is the watch of one bound leaf's address set.
type leafWatch struct {
	b       *naming.Bound
	addr    naming.Addr
	dropped bool   // no longer a leaf of the tree
	cancel  func() // guarded by liveAddr.mu
}

// Get implements watch.Value. Unwatched, it watches the binding for an
// instant and returns what that gave (pending if the namer could not
// answer at once).
func (l *liveAddr) Get() naming.Addr {
	if l.refs.Load() > 0 {
		return l.out.Get()
	}
	var v naming.Addr
	cancel := l.Subscribe(func(a naming.Addr) { v = a })
	cancel()
	return v
}

// Subscribe implements watch.Value.
func (l *liveAddr) Subscribe(f func(naming.Addr)) func() {
	l.life.Lock()
	if l.refs.Add(1) == 1 {
		l.mu.Lock()
		gen := l.gen
		l.mu.Unlock()
		// The binding calls back at once with its current answer, so out
		// holds a fresh value before f sees it.
		l.stopBind = l.bind.Subscribe(func(a watch.Activity[naming.BoundTree]) { l.onTree(gen, a) })
	}
	l.life.Unlock()
	cancel := l.out.Subscribe(f)
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			l.life.Lock()
			defer l.life.Unlock()
			if l.refs.Add(-1) == 0 {
				l.stop()
			}
		})
	}
}

// stop ends the binding's watch and every leaf watch. l.life is held.
func (l *liveAddr) stop() {
	if l.stopBind != nil {
		l.stopBind() // once it returns, onTree is not running and will not run
		l.stopBind = nil
	}
	l.mu.Lock()
	l.gen++
	leaves := l.leaves
	l.leaves = nil
	l.tree = watch.PendingActivity[naming.BoundTree]()
	l.mu.Unlock()
	for _, w := range leaves {
		if w.cancel != nil {
			w.cancel()
		}
	}
}

// onTree takes a new answer of the binding: it watches the address sets
// of the leaves it has, stops watching those it no longer has, and
// publishes the combined address set.
func (l *liveAddr) onTree(gen uint64, a watch.Activity[naming.BoundTree]) {
	l.mu.Lock()
	if gen != l.gen {
		l.mu.Unlock()
		return
	}
	l.tree = a
	want := map[*naming.Bound]bool{}
	if a.State == watch.Ok {
		collectLeaves(a.Value, want)
	}
	if l.leaves == nil {
		l.leaves = map[*naming.Bound]*leafWatch{}
	}
	var stale []func()
	for b, w := range l.leaves {
		if !want[b] {
			w.dropped = true
			delete(l.leaves, b)
			if w.cancel != nil {
				stale = append(stale, w.cancel)
			}
		}
	}
	var fresh []*leafWatch
	for b := range want {
		if l.leaves[b] != nil {
			continue
		}
		w := &leafWatch{b: b, addr: naming.Addr{State: naming.AddrPending}}
		if b.Addr == nil {
			w.addr = naming.Addr{State: naming.AddrNeg}
		} else {
			fresh = append(fresh, w)
		}
		l.leaves[b] = w
	}
	l.settling = true
	l.mu.Unlock()
	for _, cancel := range stale {
		cancel()
	}
	for _, w := range fresh {
		cancel := w.b.Addr.Subscribe(func(x naming.Addr) { l.onAddr(gen, w, x) })
		l.mu.Lock()
		if gen == l.gen && !w.dropped {
			w.cancel, cancel = cancel, nil
		}
		l.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	}
	l.mu.Lock()
	l.settling = false
	l.mu.Unlock()
	l.publish()
}

// onAddr takes a new address set of one leaf.
func (l *liveAddr) onAddr(gen uint64, w *leafWatch, a naming.Addr) {
	l.mu.Lock()
	if gen != l.gen || w.dropped {
		l.mu.Unlock()
		return
	}
	w.addr = a
	settling := l.settling
	l.mu.Unlock()
	if !settling {
		l.publish()
	}
}

// publish computes the combined address set and stores it if it changed.
func (l *liveAddr) publish() {
	l.pub.Lock()
	defer l.pub.Unlock()
	l.mu.Lock()
	a := l.combineLocked()
	l.mu.Unlock()
	if !naming.AddrEqual(l.out.Get(), a) {
		l.out.Set(a)
	}
}

// combineLocked is the address set of the current answer. l.mu is held.
func (l *liveAddr) combineLocked() naming.Addr {
	switch l.tree.State {
	case watch.Pending:
		return naming.Addr{State: naming.AddrPending}
	case watch.Failed:
		return naming.Addr{State: naming.AddrFailed, Err: fmt.Errorf("binding %s: %w", l.path, l.tree.Err)}
	}
	return l.treeAddr(l.tree.Value)
}

// treeAddr is the address set of a bound tree: a leaf's own; Neg is a
// negative set, Empty an empty one, Fail a failure; an Alt is its first
// alternative that is not negative (a pending one is waited for); a Union
// merges the address sets of its bound branches, each address weighted so
// that every branch keeps its share of the traffic.
func (l *liveAddr) treeAddr(t naming.BoundTree) naming.Addr {
	switch t.Kind {
	case dtab.Leaf:
		if w := l.leaves[t.Value]; w != nil {
			return w.addr
		}
		return naming.Addr{State: naming.AddrNeg}
	case dtab.Empty:
		return naming.Addr{State: naming.AddrBound}
	case dtab.Fail:
		return naming.Addr{State: naming.AddrFailed, Err: errors.New(l.path + " binds to a failure (!)")}
	case dtab.Alt:
		for _, c := range t.Alts {
			if a := l.treeAddr(c); a.State != naming.AddrNeg {
				return a
			}
		}
	case dtab.Union:
		var out []naming.Address
		bound, pending := false, false
		var failed naming.Addr
		for _, br := range t.Branches {
			a := l.treeAddr(br.Tree)
			switch a.State {
			case naming.AddrBound:
				bound = true
				out = appendWeighted(out, a.Addrs, br.Weight)
			case naming.AddrPending:
				pending = true
			case naming.AddrFailed:
				if failed.State != naming.AddrFailed {
					failed = a
				}
			}
		}
		switch {
		case bound:
			return naming.Addr{State: naming.AddrBound, Addrs: out}
		case pending:
			return naming.Addr{State: naming.AddrPending}
		case failed.State == naming.AddrFailed:
			return failed
		}
	}
	return naming.Addr{State: naming.AddrNeg}
}

// appendWeighted appends as with weights scaled so that together they
// weigh w.
func appendWeighted(out, as []naming.Address, w float64) []naming.Address {
	total := 0.0
	for _, a := range as {
		total += weightOf(a)
	}
	for _, a := range as {
		a.Weight = w * weightOf(a) / total
		out = append(out, a)
	}
	return out
}

func weightOf(a naming.Address) float64 {
	if a.Weight <= 0 {
		return 1
	}
	return a.Weight
}

// collectLeaves adds the bound names of t to set.
func collectLeaves(t naming.BoundTree, set map[*naming.Bound]bool) {
	switch t.Kind {
	case dtab.Leaf:
		if t.Value != nil {
			set[t.Value] = true
		}
	case dtab.Alt:
		for _, c := range t.Alts {
			collectLeaves(c, set)
		}
	case dtab.Union:
		for _, b := range t.Branches {
			collectLeaves(b.Tree, set)
		}
	}
}

var _ watch.Value[naming.Addr] = (*liveAddr)(nil)
