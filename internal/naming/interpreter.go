package naming

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Option configures NewInterpreter.
type Option func(*options)

type options struct {
	maxDepth     int
	budget       int
	resolve      HostResolver
	dnsInterval  time.Duration
	transformers []Transformer
}

// WithMaxDepth sets the limit of lookups along one delegation chain
// (default MaxDepth, spec/dtab.md §7.5).
func WithMaxDepth(n int) Option { return func(o *options) { o.maxDepth = n } }

// WithBindBudget sets the work budget of one binding or explanation
// (default DefaultBindBudget), in dentries examined plus namer lookups.
func WithBindBudget(n int) Option { return func(o *options) { o.budget = n } }

// WithHostResolver replaces the DNS resolver of /$/inet (default
// net.DefaultResolver).
func WithHostResolver(r HostResolver) Option { return func(o *options) { o.resolve = r } }

// WithDNSInterval sets how often /$/inet re-resolves watched DNS names
// (default DefaultDNSInterval).
func WithDNSInterval(d time.Duration) Option { return func(o *options) { o.dnsInterval = d } }

// WithTransformers applies transformers, in order, to every bound tree the
// interpreter produces.
func WithTransformers(ts ...Transformer) Option {
	return func(o *options) { o.transformers = append(o.transformers, ts...) }
}

// DefaultInterpreter is Linkerd's default name interpreter: it binds paths
// through a dtab, the configured namers mounted at /#/<prefix> and the
// system namers under /$/ (spec/dtab.md §7). Binding is live: each Binding
// follows the namers' answers and is recomputed (pushed, never polled)
// when one of the answers it used changes. Identical (dtab, path) bindings
// that are watched at the same time share one computation; a computation
// runs only while its Binding has subscribers.
//
// Address-set changes do not re-bind: as in Finagle, a bound tree depends
// only on namer answers, and each bound leaf's Addr pushes its own changes
// to whoever watches it (the balancer), so clients keyed by bound id stay.
//
// Subscribers are called on the goroutine of the change (the first value
// on the subscribing goroutine). As with any watch.Var, a callback must
// not subscribe to or cancel the Binding it is called for.
//
// A DefaultInterpreter is safe for concurrent use.
type DefaultInterpreter struct {
	namers   []MountedNamer // highest precedence first
	sys      *systemNamer
	maxDepth int
	budget   int
	trans    []Transformer

	evals atomic.Uint64 // evaluations run, for tests

	mu      sync.RWMutex
	byIdent map[identKey]*identRef // fast path: the caller's dtab slice
	byText  map[string]*dtabEntry  // by exact content
}

// dtabEntry groups the live bindings of one dtab (by content).
type dtabEntry struct {
	text   string // exact content key
	idents []identKey
	states map[uint64][]*bindState // by path hash
	count  int
}

// identKey identifies a dtab slice by its backing array and length. A hit
// is only trusted after the dentry headers match the snapshot (an append
// to a shared base may reuse the array for different content).
type identKey struct {
	first *dtab.Dentry
	n     int
}

// identRef is what an identity key leads to: the entry and a shallow copy
// of the dentries seen when the key was recorded, to validate later hits.
type identRef struct {
	e    *dtabEntry
	snap dtab.Dtab
}

const maxIdentsPerDtab = 8

func identOf(d dtab.Dtab) identKey {
	if len(d) == 0 {
		return identKey{}
	}
	return identKey{first: &d[0], n: len(d)}
}

// NewInterpreter returns the default interpreter over namers, given in
// configuration order (later ones take precedence, spec/dtab.md §7.3).
func NewInterpreter(namers []MountedNamer, opts ...Option) *DefaultInterpreter {
	o := options{maxDepth: MaxDepth, budget: DefaultBindBudget, resolve: defaultHostResolver, dnsInterval: DefaultDNSInterval}
	for _, f := range opts {
		f(&o)
	}
	ns := slices.Clone(namers)
	slices.Reverse(ns)
	return &DefaultInterpreter{
		namers:   ns,
		sys:      &systemNamer{resolve: o.resolve, interval: o.dnsInterval},
		maxDepth: o.maxDepth,
		budget:   o.budget,
		trans:    o.transformers,
		byIdent:  map[identKey]*identRef{},
		byText:   map[string]*dtabEntry{},
	}
}

// Bind implements Interpreter. It does no work itself: the returned
// Binding computes when subscribed (or sampled with Get). When the same
// (dtab, path) is already being watched, Bind returns that binding without
// allocating.
func (in *DefaultInterpreter) Bind(d dtab.Dtab, path dtab.Path) Binding {
	h := hashPath(path)
	in.mu.RLock()
	if r := in.byIdent[identOf(d)]; r != nil && sameDentries(r.snap, d) {
		for _, s := range r.e.states[h] {
			if s.path.Equal(path) {
				b := s.handle
				in.mu.RUnlock()
				return b
			}
		}
	}
	in.mu.RUnlock()
	return &binding{in: in, d: d, path: path, hash: h}
}

// sameDentries reports whether a and b hold the very same dentries (same
// slices, not merely equal content). It costs a few word comparisons per
// dentry.
func sameDentries(a, b dtab.Dtab) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if len(x.Prefix) != len(y.Prefix) || x.Dst.Kind != y.Dst.Kind ||
			len(x.Dst.Value) != len(y.Dst.Value) || len(x.Dst.Alts) != len(y.Dst.Alts) ||
			len(x.Dst.Branches) != len(y.Dst.Branches) {
			return false
		}
		if len(x.Prefix) > 0 && &x.Prefix[0] != &y.Prefix[0] ||
			len(x.Dst.Value) > 0 && &x.Dst.Value[0] != &y.Dst.Value[0] ||
			len(x.Dst.Alts) > 0 && &x.Dst.Alts[0] != &y.Dst.Alts[0] ||
			len(x.Dst.Branches) > 0 && &x.Dst.Branches[0] != &y.Dst.Branches[0] {
			return false
		}
	}
	return true
}

// hashPath is FNV-1a over the path's bytes, with each element's length
// mixed in after it so that element boundaries count. It does not
// allocate; collisions are resolved by comparing paths.
func hashPath(p dtab.Path) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, e := range p {
		for i := 0; i < len(e); i++ {
			h ^= uint64(e[i])
			h *= prime
		}
		h ^= uint64(len(e)) | 0xff00
		h *= prime
	}
	return h
}

// dtabKey returns an exact textual key for d's content: unlike the
// canonical printed form it keeps weights exactly.
func dtabKey(d dtab.Dtab) string {
	var b []byte
	for _, de := range d {
		for _, pe := range de.Prefix {
			if pe.Any {
				b = append(b, '*', 0)
			} else {
				b = appendKeyElem(append(b, 'l'), pe.Label)
			}
		}
		b = append(b, '=')
		b = appendTreeKey(b, de.Dst)
		b = append(b, ';')
	}
	return string(b)
}

func appendKeyElem(b []byte, e string) []byte {
	n := len(e)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, e...)
}

func appendTreeKey(b []byte, t dtab.NameTree) []byte {
	b = append(b, '0'+byte(t.Kind))
	switch t.Kind {
	case dtab.Leaf:
		b = append(b, byte(len(t.Value)))
		for _, e := range t.Value {
			b = appendKeyElem(b, e)
		}
	case dtab.Alt:
		b = append(b, '(')
		for _, c := range t.Alts {
			b = appendTreeKey(b, c)
		}
		b = append(b, ')')
	case dtab.Union:
		b = append(b, '(')
		for _, w := range t.Branches {
			u := math.Float64bits(w.Weight)
			b = append(b, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32), byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
			b = appendTreeKey(b, w.Tree)
		}
		b = append(b, ')')
	}
	return b
}

// acquire returns the live state for b's (dtab, path), creating it, and
// counts one more subscriber.
func (in *DefaultInterpreter) acquire(b *binding) *bindState {
	id := identOf(b.d)
	in.mu.Lock()
	var e *dtabEntry
	if r := in.byIdent[id]; r != nil && sameDentries(r.snap, b.d) {
		e = r.e
	} else {
		in.mu.Unlock()
		key := dtabKey(b.d) // outside the lock: proportional to the dtab
		in.mu.Lock()
		e = in.byText[key]
		if e == nil {
			e = &dtabEntry{text: key, states: map[uint64][]*bindState{}}
			in.byText[key] = e
		}
		if len(e.idents) == maxIdentsPerDtab {
			if r := in.byIdent[e.idents[0]]; r != nil && r.e == e {
				delete(in.byIdent, e.idents[0])
			}
			e.idents = slices.Delete(e.idents, 0, 1)
		}
		e.idents = append(e.idents, id)
		in.byIdent[id] = &identRef{e: e, snap: slices.Clone(b.d)}
	}
	defer in.mu.Unlock()
	for _, s := range e.states[b.hash] {
		if s.path.Equal(b.path) {
			s.refs++
			return s
		}
	}
	s := newBindState(in, e, b)
	s.refs = 1
	b.live.Store(s)
	e.states[b.hash] = append(e.states[b.hash], s)
	e.count++
	return s
}

// release counts one subscriber less and stops the state when none is left.
func (in *DefaultInterpreter) release(s *bindState) {
	in.mu.Lock()
	s.refs--
	if s.refs > 0 {
		in.mu.Unlock()
		return
	}
	e := s.entry
	list := e.states[s.hash]
	if i := slices.Index(list, s); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(e.states, s.hash)
	} else {
		e.states[s.hash] = list
	}
	e.count--
	if e.count == 0 {
		delete(in.byText, e.text)
		for _, id := range e.idents {
			if r := in.byIdent[id]; r != nil && r.e == e {
				delete(in.byIdent, id)
			}
		}
	}
	in.mu.Unlock()
	s.handle.live.CompareAndSwap(s, nil)
	s.close()
}

// active returns the live state of b, if any.
func (in *DefaultInterpreter) active(b *binding) *bindState {
	in.mu.RLock()
	defer in.mu.RUnlock()
	if r := in.byIdent[identOf(b.d)]; r != nil && sameDentries(r.snap, b.d) {
		for _, s := range r.e.states[b.hash] {
			if s.path.Equal(b.path) {
				return s
			}
		}
	}
	return nil
}

// binding is the Binding handle Bind returns.
type binding struct {
	in   *DefaultInterpreter
	d    dtab.Dtab
	path dtab.Path
	hash uint64
	// live is the state this handle created while it is watched; other
	// handles of the same (dtab, path) find it through the interpreter.
	live atomic.Pointer[bindState]
}

// Get implements watch.Value. Without subscribers it binds once and
// returns the result (pending if a namer has not answered yet).
func (b *binding) Get() watch.Activity[BoundTree] {
	s := b.live.Load()
	if s == nil {
		s = b.in.active(b)
	}
	if s != nil {
		s.init.Do(s.evaluate)
		return s.out.Get()
	}
	var v watch.Activity[BoundTree]
	cancel := b.Subscribe(func(a watch.Activity[BoundTree]) { v = a })
	cancel()
	return v
}

// Subscribe implements watch.Value.
func (b *binding) Subscribe(f func(watch.Activity[BoundTree])) func() {
	s := b.in.acquire(b)
	s.init.Do(s.evaluate)
	cancel := s.out.Subscribe(f)
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			b.in.release(s)
		})
	}
}
