package k8s

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	kapi "github.com/linnet-mesh/linnet/internal/k8s"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// mode is which of the three namer kinds a Namer is.
type mode uint8

const (
	modeK8s      mode = iota // /<ns>/<port>/<svc>[/<label>]
	modeNS                   // /<port>/<svc>[/<label>], namespace from env
	modeExternal             // /<ns>/<port>/<svc>, load balancer addresses
)

// Namer resolves Kubernetes Service names. Build it with a Config.
type Namer struct {
	mode     mode
	prefix   dtab.Path // where it is mounted: /#/<prefix>
	selector string    // labelSelector key, "" for none
	ns       string    // modeNS: the namespace
	cluster  *kapi.Cluster
	logger   *slog.Logger

	startOnce sync.Once
	// update serialises recomputation and publication, so that two informer
	// goroutines cannot publish an older result after a newer one.
	update  sync.Mutex
	mu      sync.Mutex
	entries map[key]*entry

	// Metrics (under the namer's scope, namer/<prefix>/...).
	updates *telemetry.Counter // address sets published
}

// entry is the shared state of one watched name; it lives while refs > 0.
type entry struct {
	k      key
	id     dtab.Path
	refs   int
	last   result
	state  *watch.Var[result]
	addr   *watch.Var[naming.Addr]
	bounds map[string]*naming.Bound // by printed residual

	// For the state page (under the namer's mu): when the entry was
	// created, and when and how often its result changed since.
	started, updated time.Time
	updates          uint64
}

func newNamer(m mode, prefix dtab.Path, selector, ns string, c *kapi.Cluster, logger *slog.Logger) *Namer {
	return &Namer{mode: m, prefix: prefix, selector: selector, ns: ns, cluster: c, logger: logger,
		entries: map[key]*entry{}, updates: new(telemetry.Counter)}
}

// instrument registers the namer's metrics: watched (names with
// subscribers) and updates (address-set changes published).
func (n *Namer) instrument(scope telemetry.Scope) {
	n.updates = scope.Counter("updates")
	scope.Gauge("watched", func() float64 {
		n.mu.Lock()
		defer n.mu.Unlock()
		return float64(len(n.entries))
	})
}

var negLookup = watch.Const[watch.Activity[dtab.Tree[naming.Name]]]{V: watch.OkActivity(dtab.NegTree[naming.Name]())}

// parse splits a lookup path into the key and the residual; ok is false
// when the path is too short to name anything (a negative answer).
func (n *Namer) parse(path dtab.Path) (k key, idLen int, ok bool) {
	need := 3
	if n.mode == modeNS {
		need = 2
	}
	if n.selector != "" {
		need++
	}
	if len(path) < need {
		return key{}, 0, false
	}
	lc := func(i int) string { return strings.ToLower(path[i]) }
	switch n.mode {
	case modeNS:
		k = key{ns: n.ns, port: lc(0), svc: lc(1)}
	default:
		k = key{ns: lc(0), port: lc(1), svc: lc(2)}
	}
	if n.selector != "" {
		k.label, k.hasLabel = lc(need-1), true
	}
	return k, need, true
}

// Lookup implements naming.Namer.
func (n *Namer) Lookup(path dtab.Path) naming.Lookup {
	k, idLen, ok := n.parse(path)
	if !ok {
		return negLookup
	}
	id := n.prefix.Concat(idPath(k, n.mode))
	return &lookupValue{n: n, k: k, id: id, residual: path[idLen:]}
}

func idPath(k key, m mode) dtab.Path {
	var p dtab.Path
	if m == modeNS {
		p = dtab.Path{k.port, k.svc}
	} else {
		p = dtab.Path{k.ns, k.port, k.svc}
	}
	if k.hasLabel {
		p = append(p, k.label)
	}
	return p
}

func (n *Namer) start() {
	n.startOnce.Do(func() {
		// The namer lives as long as its cluster; the cluster's informers
		// stop with the host's context.
		n.cluster.WatchServices(n.onChange)
	})
}

// compute resolves k from the informer caches.
func (n *Namer) compute(k key) result {
	select {
	case <-n.cluster.EndpointsSynced():
	default:
		if err := n.cluster.EndpointsError(); err != nil {
			return result{err: err}
		}
		return result{pending: true}
	}
	svc, svcOK := n.cluster.Service(k.ns, k.svc)
	var sp *kapi.Service
	if svcOK {
		sp = &svc
	}
	if n.mode == modeExternal {
		return resolveExternal(k, n.selector, sp)
	}
	ep, found := n.cluster.Endpoints(k.ns, k.svc)
	return resolveEndpoints(k, n.selector, ep, found, sp)
}

// onChange recomputes the names of one Service (or all, for the zero key).
func (n *Namer) onChange(sk kapi.ServiceKey) {
	n.update.Lock()
	defer n.update.Unlock()
	n.mu.Lock()
	var es []*entry
	for k, e := range n.entries {
		if sk == (kapi.ServiceKey{}) || k.ns == sk.Namespace && k.svc == sk.Name {
			es = append(es, e)
		}
	}
	n.mu.Unlock()
	for _, e := range es {
		r := n.compute(e.k)
		n.mu.Lock()
		changed := !r.equal(e.last)
		if changed {
			e.last = r
			e.updated = time.Now()
			e.updates++
		}
		n.mu.Unlock()
		if changed {
			// Counted before it is published, so that whoever sees the
			// change sees it counted. Addresses first: a subscriber that
			// sees the name appear reads its addresses right away.
			n.updates.Inc()
			e.addr.Set(r.addr())
			e.state.Set(r)
		}
	}
}

// acquire returns k's entry, creating it, and takes a reference.
func (n *Namer) acquire(k key, id dtab.Path) *entry {
	n.start()
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.entries[k]
	if e == nil {
		r := n.compute(k)
		e = &entry{k: k, id: id, last: r, state: watch.NewVar(r), addr: watch.NewVar(r.addr()), bounds: map[string]*naming.Bound{}, started: time.Now()}
		n.entries[k] = e
	}
	e.refs++
	return e
}

func (n *Namer) release(e *entry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e.refs--
	if e.refs == 0 && n.entries[e.k] == e {
		delete(n.entries, e.k)
	}
}

// peek returns the current result of k without taking a reference.
func (n *Namer) peek(k key) result {
	n.mu.Lock()
	e := n.entries[k]
	var r result
	if e != nil {
		r = e.last
	}
	n.mu.Unlock()
	if e != nil {
		return r
	}
	n.start()
	return n.compute(k)
}

// bound returns the entry's Bound for residual, the same one every time
// while the entry lives.
func (n *Namer) bound(e *entry, residual dtab.Path) *naming.Bound {
	n.mu.Lock()
	defer n.mu.Unlock()
	rk := residual.String()
	b := e.bounds[rk]
	if b == nil {
		b = &naming.Bound{ID: e.id, Residual: residual, Addr: &addrValue{n: n, k: e.k, id: e.id}}
		e.bounds[rk] = b
	}
	return b
}

func (n *Namer) tree(e *entry, residual dtab.Path, r result) watch.Activity[dtab.Tree[naming.Name]] {
	switch {
	case r.err != nil:
		return watch.FailedActivity[dtab.Tree[naming.Name]](r.err)
	case r.pending:
		return watch.PendingActivity[dtab.Tree[naming.Name]]()
	case !r.exists:
		return watch.OkActivity(dtab.NegTree[naming.Name]())
	}
	return watch.OkActivity(dtab.LeafTree(naming.Name{Bound: n.bound(e, residual)}))
}

// lookupValue is the answer to one Lookup: a name tree that is negative,
// pending, or one bound leaf.
type lookupValue struct {
	n        *Namer
	k        key
	id       dtab.Path
	residual dtab.Path
}

// Get implements watch.Value.
func (v *lookupValue) Get() watch.Activity[dtab.Tree[naming.Name]] {
	e := v.n.acquire(v.k, v.id)
	defer v.n.release(e)
	return v.n.tree(e, v.residual, e.state.Get())
}

// Subscribe implements watch.Value.
func (v *lookupValue) Subscribe(f func(watch.Activity[dtab.Tree[naming.Name]])) func() {
	e := v.n.acquire(v.k, v.id)
	var last *result
	cancel := e.state.Subscribe(func(r result) {
		// The tree only changes with pending/exists; address changes travel
		// through the bound name's Addr.
		if last != nil && last.pending == r.pending && last.exists == r.exists && sameErr(last.err, r.err) {
			return
		}
		last = &r
		f(v.n.tree(e, v.residual, r))
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			v.n.release(e)
		})
	}
}

// addrValue is a bound name's address set.
type addrValue struct {
	n  *Namer
	k  key
	id dtab.Path
}

// Get implements watch.Value.
func (v *addrValue) Get() naming.Addr { return v.n.peek(v.k).addr() }

// Subscribe implements watch.Value.
func (v *addrValue) Subscribe(f func(naming.Addr)) func() {
	e := v.n.acquire(v.k, v.id)
	cancel := e.addr.Subscribe(f)
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			v.n.release(e)
		})
	}
}

// watchAddr returns the address set of ns/port/svc (for the daemonset
// transformer): AddrNeg where a lookup would be negative.
func (n *Namer) watchAddr(ns, port, svc string) watch.Value[naming.Addr] {
	k := key{ns: strings.ToLower(ns), port: strings.ToLower(port), svc: strings.ToLower(svc)}
	return &addrValue{n: n, k: k, id: n.prefix.Concat(idPath(k, modeK8s))}
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}
