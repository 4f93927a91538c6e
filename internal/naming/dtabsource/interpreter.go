package dtabsource

import (
	"context"
	"errors"
	"sync"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Interpreter is the default interpreter with a live dtab in front of the
// dtab it is given. It implements naming.Interpreter, naming.Explainer
// (so the admin delegator explains with the live dtab) and
// naming.InterpreterStatePage (the live dtab at
// /<router>/interpreter_state/<kind>/<name>.json).
type Interpreter struct {
	live  *Live
	inner *naming.DefaultInterpreter
	kind  string
	name  string
}

// New returns an interpreter binding with live's dtab followed by the
// dtab of each Bind, through inner. kind and name name its admin state
// page.
func New(live *Live, inner *naming.DefaultInterpreter, kind, name string) *Interpreter {
	return &Interpreter{live: live, inner: inner, kind: kind, name: name}
}

// NewFromEnv builds the default interpreter over env's namers and the
// configured transformers, with live's dtab in front.
func NewFromEnv(env naming.InterpreterEnv, transformers []config.Kinded[naming.TransformerConfig], live *Live, kind, name string) (*Interpreter, error) {
	ts, err := naming.NewTransformers(env.Env, transformers)
	if err != nil {
		return nil, err
	}
	return New(live, naming.NewInterpreter(env.Namers, naming.WithTransformers(ts...)), kind, name), nil
}

// Live returns the interpreter's live dtab.
func (in *Interpreter) Live() *Live { return in.live }

// LiveDtab returns the dtab in force, applied before the router's, and
// whether there is one yet (the admin delegator page shows it).
func (in *Interpreter) LiveDtab() (dtab.Dtab, bool) { return in.live.Current() }

// StatePage implements naming.InterpreterStatePage.
func (in *Interpreter) StatePage() (kind, name string) { return in.kind, in.name }

// State implements naming.StateReporter.
func (in *Interpreter) State() any { return in.live.State() }

// ErrNoDtab is returned by Explain before the source has yielded a dtab.
var ErrNoDtab = errors.New("the interpreter's dtab has not been loaded yet")

// Explain implements naming.Explainer with the live dtab in front of d.
func (in *Interpreter) Explain(ctx context.Context, d dtab.Dtab, path dtab.Path) (naming.DelegateNode, error) {
	a := in.live.Value().Get()
	switch a.State {
	case watch.Pending:
		return naming.DelegateNode{}, ErrNoDtab
	case watch.Failed:
		return naming.DelegateNode{}, a.Err
	}
	return in.inner.Explain(ctx, concat(a.Value, d), path)
}

// Bind implements naming.Interpreter.
func (in *Interpreter) Bind(d dtab.Dtab, path dtab.Path) naming.Binding {
	return &binding{in: in, d: d, path: path}
}

func concat(live, d dtab.Dtab) dtab.Dtab {
	if len(live) == 0 {
		return d
	}
	out := make(dtab.Dtab, 0, len(live)+len(d))
	return append(append(out, live...), d...)
}

// binding follows the live dtab: each change re-binds (live ++ d, path)
// through the inner interpreter and forwards that binding's values.
type binding struct {
	in   *Interpreter
	d    dtab.Dtab
	path dtab.Path
}

// Get implements watch.Value.
func (b *binding) Get() watch.Activity[naming.BoundTree] {
	a := b.in.live.Value().Get()
	switch a.State {
	case watch.Pending:
		return watch.PendingActivity[naming.BoundTree]()
	case watch.Failed:
		return watch.FailedActivity[naming.BoundTree](a.Err)
	}
	return b.in.inner.Bind(concat(a.Value, b.d), b.path).Get()
}

// Subscribe implements watch.Value.
func (b *binding) Subscribe(f func(watch.Activity[naming.BoundTree])) func() {
	s := &subscription{b: b, f: f}
	cancelLive := b.in.live.Value().Subscribe(s.onDtab)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancelLive()
		return func() {}
	}
	s.cancelLive = cancelLive
	s.mu.Unlock()
	return s.cancel
}

// subscription is one Subscribe of a binding. onDtab calls are serialised
// by the live Var. On a dtab change the binding of the new dtab is
// subscribed while the old one keeps serving: the old one's values are
// forwarded until the new one first has an answer (so a namer that has not
// answered yet for a name the new dtab introduces does not turn a routed
// name into a pending one), then the old one is dropped.
type subscription struct {
	b *binding
	f func(watch.Activity[naming.BoundTree])

	mu     sync.Mutex // held while f runs
	closed bool
	cur    inner
	prev   inner // serving until cur answers; gen 0 when none
	gens   uint64
	// cancelLive ends the subscription to the live dtab.
	cancelLive func()
}

// inner is one subscription to the inner interpreter.
type inner struct {
	gen      uint64
	cancel   func()
	answered bool // has had a non-pending value
}

func (s *subscription) onDtab(a watch.Activity[dtab.Dtab]) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if a.State != watch.Ok {
		// No dtab yet (Live never withdraws a good one).
		drop := []inner{s.cur, s.prev}
		s.cur, s.prev = inner{}, inner{}
		if a.State == watch.Pending {
			s.f(watch.PendingActivity[naming.BoundTree]())
		} else {
			s.f(watch.FailedActivity[naming.BoundTree](a.Err))
		}
		s.mu.Unlock()
		cancelAll(drop)
		return
	}
	s.gens++
	gen := s.gens
	// The binding serving now (the current one if it has answered, else
	// the previous one, if any) keeps serving until the new one answers;
	// the other is dropped.
	var drop []inner
	if s.cur.answered {
		drop = append(drop, s.prev)
		s.prev = s.cur
	} else {
		drop = append(drop, s.cur)
	}
	s.cur = inner{gen: gen}
	s.mu.Unlock()
	cancelAll(drop)

	b := s.b.in.inner.Bind(concat(a.Value, s.b.d), s.b.path)
	cancel := b.Subscribe(func(t watch.Activity[naming.BoundTree]) { s.onInner(gen, t) })
	s.mu.Lock()
	if s.closed || s.cur.gen != gen {
		s.mu.Unlock()
		cancel()
		return
	}
	s.cur.cancel = cancel
	s.mu.Unlock()
}

// onInner forwards a value of inner binding gen when it is the one
// serving.
func (s *subscription) onInner(gen uint64, t watch.Activity[naming.BoundTree]) {
	s.mu.Lock()
	switch {
	case s.closed:
	case gen == s.cur.gen:
		if t.State == watch.Pending && s.prev.gen != 0 {
			break // the previous binding serves until this one answers
		}
		s.f(t)
		if t.State != watch.Pending {
			s.cur.answered = true
		}
		if s.prev.gen != 0 {
			// Cancelled on another goroutine: this callback may run on
			// the goroutine of the binding being cancelled.
			go cancelAll([]inner{s.prev})
			s.prev = inner{}
		}
	case gen == s.prev.gen:
		s.f(t)
	}
	s.mu.Unlock()
}

func cancelAll(is []inner) {
	for _, i := range is {
		if i.cancel != nil {
			i.cancel()
		}
	}
}

func (s *subscription) cancel() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	drop := []inner{s.cur, s.prev}
	s.cur, s.prev = inner{}, inner{}
	live := s.cancelLive
	s.cancelLive = nil
	s.mu.Unlock()
	if live != nil {
		live()
	}
	cancelAll(drop)
}
