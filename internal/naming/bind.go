package naming

import (
	"errors"
	"sync"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// bindState is the shared, live computation of one (dtab, path) binding.
//
// It evaluates the bind algorithm (spec/dtab.md §7.5) over the current
// answers of the namer lookups it needs, subscribing to each lookup the
// first time an evaluation reaches it. When a subscribed answer changes,
// the state is marked dirty and a goroutine (at most one at a time)
// re-evaluates; lookups the new evaluation no longer reaches are
// unsubscribed. Results equal to the previous one are not republished.
type bindState struct {
	in     *DefaultInterpreter
	entry  *dtabEntry
	handle *binding
	d      dtab.Dtab
	path   dtab.Path
	hash   uint64
	refs   int // guarded by in.mu

	out  *watch.Var[watch.Activity[BoundTree]]
	init sync.Once // first evaluation

	evalMu sync.Mutex // one evaluation at a time; guards gen
	gen    uint64

	mu      sync.Mutex // guards the fields below and every lookupSub
	closed  bool
	dirty   bool
	running bool
	lookups map[lookupKey]*lookupSub
}

// lookupKey names one namer lookup: the namer's index in precedence order
// (-1 for the system namer) and the printed path it was given.
type lookupKey struct {
	namer int
	path  string
}

type lookupSub struct {
	val     watch.Activity[dtab.Tree[Name]]
	used    uint64 // generation of the last evaluation that read it
	initial bool   // inside Subscribe's first callback: no re-evaluation
	cancel  func()
}

func newBindState(in *DefaultInterpreter, e *dtabEntry, b *binding) *bindState {
	return &bindState{
		in: in, entry: e, handle: b, d: b.d, path: b.path, hash: b.hash,
		out:     watch.NewVar(watch.PendingActivity[BoundTree]()),
		lookups: map[lookupKey]*lookupSub{},
	}
}

// evaluate binds once more and publishes the result if it changed.
func (s *bindState) evaluate() {
	s.evalMu.Lock()
	defer s.evalMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	s.gen++
	s.in.evals.Add(1)
	ev := evaluator{in: s.in, d: s.d, lookup: s.lookup, budget: s.in.budget}
	res := ev.bindPath(s.path, 0)
	if ev.budget < 0 {
		res = boundActivity{State: watch.Failed, Err: ErrBindTooComplex}
	}
	if res.State == watch.Ok {
		for _, t := range s.in.trans {
			res.Value = t.Transform(res.Value)
		}
	}
	var stale []func()
	s.mu.Lock()
	for k, l := range s.lookups {
		if l.used != s.gen {
			delete(s.lookups, k)
			if l.cancel != nil {
				stale = append(stale, l.cancel)
			}
		}
	}
	s.mu.Unlock()
	for _, cancel := range stale {
		cancel()
	}
	if !activityEqual(s.out.Get(), res) {
		s.out.Set(res)
	}
}

// lookup returns the current answer of namer for path, subscribing to it
// on first use. Called only from evaluate (under evalMu).
func (s *bindState) lookup(key lookupKey, namer Namer, path dtab.Path) watch.Activity[dtab.Tree[Name]] {
	s.mu.Lock()
	if l := s.lookups[key]; l != nil {
		l.used = s.gen
		v := l.val
		s.mu.Unlock()
		return v
	}
	l := &lookupSub{used: s.gen, initial: true}
	s.lookups[key] = l
	s.mu.Unlock()
	lv := namer.Lookup(path)
	if lv == nil {
		lv = watch.Const[watch.Activity[dtab.Tree[Name]]]{V: watch.FailedActivity[dtab.Tree[Name]](
			errors.New("namer returned no lookup for " + path.String()))}
	}
	cancel := lv.Subscribe(func(v watch.Activity[dtab.Tree[Name]]) {
		s.mu.Lock()
		l.val = v
		if !l.initial {
			s.scheduleLocked()
		}
		s.mu.Unlock()
	})
	s.mu.Lock()
	l.initial = false
	l.cancel = cancel
	v := l.val
	s.mu.Unlock()
	return v
}

// scheduleLocked marks the state dirty and makes sure a goroutine will
// re-evaluate it. s.mu must be held.
func (s *bindState) scheduleLocked() {
	if s.closed {
		return
	}
	s.dirty = true
	if s.running {
		return
	}
	s.running = true
	go s.run()
}

func (s *bindState) run() {
	for {
		s.mu.Lock()
		if !s.dirty || s.closed {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.dirty = false
		s.mu.Unlock()
		s.evaluate()
	}
}

// close stops the computation: no evaluation runs after it returns, and
// every lookup subscription is cancelled.
func (s *bindState) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.evalMu.Lock() // wait for an evaluation in progress
	s.mu.Lock()
	lookups := s.lookups
	s.lookups = nil
	s.mu.Unlock()
	s.evalMu.Unlock()
	for _, l := range lookups {
		if l.cancel != nil {
			l.cancel()
		}
	}
}

// evaluator runs the bind algorithm of spec/dtab.md §7.5 over namer
// answers supplied by lookup.
type evaluator struct {
	in     *DefaultInterpreter
	d      dtab.Dtab
	budget int // work left; negative once exhausted (the result is then discarded)
	lookup func(key lookupKey, namer Namer, path dtab.Path) watch.Activity[dtab.Tree[Name]]
}

type boundActivity = watch.Activity[BoundTree]

func okTree(t BoundTree) boundActivity { return boundActivity{State: watch.Ok, Value: t} }

var pendingTree = boundActivity{State: watch.Pending}

// bindPath binds the unbound path q found at depth: one dtab lookup step,
// or the namers when the step gives exactly Neg (§7.2), then the result one
// level deeper.
func (e *evaluator) bindPath(q dtab.Path, depth int) boundActivity {
	if depth > e.in.maxDepth {
		return boundActivity{State: watch.Failed, Err: maxDepthError{e.in.maxDepth}}
	}
	t := e.d.Lookup(q)
	if e.budget -= 1 + len(e.d)/8 + treeCost(t, pathCost); e.budget < 0 {
		return boundActivity{State: watch.Failed, Err: ErrBindTooComplex}
	}
	if t.Kind != dtab.Neg {
		return bindTree(e, t, depth+1, (*evaluator).bindPathLeaf)
	}
	r := e.namerLookup(q)
	if r.State != watch.Ok {
		return boundActivity{State: r.State, Err: r.Err}
	}
	if e.budget -= treeCost(r.Value, nameCost); e.budget < 0 {
		return boundActivity{State: watch.Failed, Err: ErrBindTooComplex}
	}
	return bindTree(e, r.Value, depth+1, (*evaluator).bindNameLeaf)
}

func (e *evaluator) bindPathLeaf(p dtab.Path, depth int) boundActivity {
	return e.bindPath(p, depth)
}

func (e *evaluator) bindNameLeaf(n Name, depth int) boundActivity {
	if n.Bound != nil {
		return okTree(dtab.LeafTree(n.Bound))
	}
	return e.bindPath(n.Path, depth)
}

// namerLookup asks the configured namers whose prefix matches q, highest
// precedence first, moving on when one answers Neg; then the system namer.
func (e *evaluator) namerLookup(q dtab.Path) watch.Activity[dtab.Tree[Name]] {
	for i, m := range e.in.namers {
		if !q.HasPrefix(m.Prefix) {
			continue
		}
		rest := q[len(m.Prefix):]
		r := e.lookup(lookupKey{namer: i, path: rest.String()}, m, rest)
		if r.State != watch.Ok || r.Value.Kind != dtab.Neg {
			return r
		}
	}
	return e.lookup(lookupKey{namer: -1, path: q.String()}, e.in.sys, q)
}

// bindTree binds every leaf of t (examined at depth) with leaf, combining
// the results per §7.5 and the dynamic rules of §7.6.
func bindTree[T any](e *evaluator, t dtab.Tree[T], depth int, leaf func(*evaluator, T, int) boundActivity) boundActivity {
	if depth > e.in.maxDepth {
		return boundActivity{State: watch.Failed, Err: maxDepthError{e.in.maxDepth}}
	}
	switch t.Kind {
	case dtab.Leaf:
		return leaf(e, t.Value, depth)
	case dtab.Neg, dtab.Fail, dtab.Empty:
		return okTree(BoundTree{Kind: t.Kind})
	case dtab.Union:
		switch len(t.Branches) {
		case 0:
			return okTree(dtab.NegTree[*Bound]())
		case 1:
			return bindTree(e, t.Branches[0].Tree, depth, leaf)
		}
		oks := make([]dtab.Weighted[*Bound], 0, len(t.Branches))
		var firstErr error
		for _, b := range t.Branches {
			r := bindTree(e, b.Tree, depth, leaf)
			switch r.State {
			case watch.Ok:
				oks = append(oks, dtab.Weighted[*Bound]{Weight: b.Weight, Tree: r.Value})
			case watch.Failed:
				if firstErr == nil {
					firstErr = r.Err
				}
			}
		}
		if len(oks) == 0 {
			if firstErr != nil {
				return boundActivity{State: watch.Failed, Err: firstErr}
			}
			return pendingTree
		}
		return okTree(dtab.Simplify(dtab.UnionTree(oks...)))
	case dtab.Alt:
		for _, c := range t.Alts {
			r := bindTree(e, c, depth, leaf)
			if r.State != watch.Ok {
				return r // an error fails the whole binding; pending blocks the rest
			}
			switch r.Value.Kind {
			case dtab.Neg:
				continue
			case dtab.Fail:
				return okTree(dtab.FailTree[*Bound]())
			}
			return r
		}
		return okTree(dtab.NegTree[*Bound]())
	}
	return okTree(dtab.NegTree[*Bound]())
}

// activityEqual reports whether two binding results are the same: same
// state, same error text, and trees equal with bound names compared by
// identity.
func activityEqual(a, b boundActivity) bool {
	if a.State != b.State {
		return false
	}
	switch a.State {
	case watch.Failed:
		return a.Err.Error() == b.Err.Error()
	case watch.Ok:
		return dtab.TreeEqual(a.Value, b.Value, func(x, y *Bound) bool { return x == y })
	}
	return true
}

// treeCost is the size of t for the work budget: one per node plus the
// cost of each leaf.
func treeCost[T any](t dtab.Tree[T], leaf func(T) int) int {
	switch t.Kind {
	case dtab.Leaf:
		return 1 + leaf(t.Value)
	case dtab.Alt:
		n := 1
		for _, c := range t.Alts {
			n += treeCost(c, leaf)
		}
		return n
	case dtab.Union:
		n := 1
		for _, b := range t.Branches {
			n += treeCost(b.Tree, leaf)
		}
		return n
	}
	return 1
}

func pathCost(p dtab.Path) int { return len(p) }

func nameCost(n Name) int { return len(n.Path) }
