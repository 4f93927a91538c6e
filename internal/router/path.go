package router

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// pathEntry is the path tier for one logical name and local dtab: it keeps
// the name's bound tree current and picks a bound name for each request.
type pathEntry struct {
	r       *Router
	key     string
	once    sync.Once
	name    dtab.Path
	nameStr string
	local   dtab.Dtab
	policy  ServicePolicy
	stats   *telemetry.RequestStats
	svc     http.RoundTripper

	tree   atomic.Pointer[watch.Activity[naming.BoundTree]]
	ready  chan struct{} // closed once the binding is no longer pending
	readyO sync.Once
	mu     sync.Mutex
	cancel func()
	closed bool
	// keys caches the bound-tier key of each bound leaf seen.
	keys sync.Map // *naming.Bound → string
	// csStats are the client × service metrics
	// (rt/<label>/client/<id>/service/<name>) of each bound entry used.
	csStats sync.Map // *boundEntry → *telemetry.RequestStats
	success Classifier
	// express: the policy lets requests take the express lane;
	// relayBelow500: its classifiers call every status below 500 a
	// success, so the lane may relay such responses without classifying
	// each.
	express, relayBelow500 bool
}

func (r *Router) newPathEntry(key string) *pathEntry {
	return &pathEntry{r: r, key: key, ready: make(chan struct{})}
}

// init builds the entry's stack and starts its binding, once.
func (p *pathEntry) init(dst Dst) {
	p.once.Do(func() {
		p.name = dst.Path
		p.nameStr = dst.Path.String()
		p.local = dst.Local
		if p.r.p.Service != nil {
			p.policy = p.r.p.Service(dst.Path)
		}
		if p.policy.Classifier == nil {
			p.policy.Classifier = defaultClassifier
		}
		p.success = successOf(p.policy.Classifier)
		p.svc = compose(pathStack, p, RoundTripperFunc(p.route))
		p.express = len(dst.Local) == 0 && p.policy.TotalTimeout == 0 &&
			(p.policy.Retries == nil || p.policy.Express.Valid() && p.policy.Express.Immediate())
		p.relayBelow500 = below500Succeeds(p.policy.Classifier)
		full := make(dtab.Dtab, 0, len(p.r.p.Dtab)+len(dst.Local))
		full = append(append(full, p.r.p.Dtab...), dst.Local...)
		binding := p.r.p.Interpreter.Bind(full, dst.Path)
		cancel := binding.Subscribe(p.update)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			cancel()
			return
		}
		p.cancel = cancel
		p.mu.Unlock()
	})
}

func (p *pathEntry) update(a watch.Activity[naming.BoundTree]) {
	p.tree.Store(&a)
	p.keys.Clear()
	if a.State != watch.Pending {
		p.readyO.Do(func() { close(p.ready) })
	}
}

func (p *pathEntry) close() {
	p.mu.Lock()
	p.closed = true
	cancel := p.cancel
	p.cancel = nil
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if p.stats != nil {
		p.stats.Close()
	}
	p.csStats.Range(func(_, st any) bool {
		st.(*telemetry.RequestStats).Close()
		return true
	})
}

// route is the bottom of the path stack: pick a bound name from the
// current tree and hand the request to its bound entry.
func (p *pathEntry) route(req *http.Request) (*http.Response, error) {
	ok, err := p.r.waitReady(req.Context(), p.ready)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &BindingTimeoutError{Name: p.name, Timeout: p.r.p.BindingTimeout.String()}
	}
	a := p.tree.Load()
	if a.State == watch.Failed {
		return nil, p.noRoute(a.Err.Error(), nil)
	}
	b, why := pick(a.Value)
	if b == nil {
		return nil, p.noRoute(why, nil)
	}
	key, ok2 := p.keys.Load(b)
	if !ok2 {
		key = b.ID.String()
		p.keys.Store(b, key)
	}
	be := p.r.bounds.get(key.(string), coarseNow())
	be.init(b)
	if len(b.Residual) > 0 {
		req.Header.Set(hdrDstResidual, b.Residual.String())
	} else if req.Header != nil {
		delete(req.Header, hdrDstResidual)
	}
	cs := p.clientServiceStats(be)
	t0 := cs.Start()
	resp, err := be.svc.RoundTrip(req)
	status, kind := Outcome(req, resp, err, p.success)
	cs.End(t0, status, kind)
	if nr, isNR := err.(*NoRouteError); isNR && nr.Name == nil {
		nr.Name, nr.Base, nr.Local = p.name, p.r.p.Dtab, p.local
	}
	return resp, err
}

func (p *pathEntry) noRoute(reason string, bound dtab.Path) *NoRouteError {
	return &NoRouteError{Name: p.name, Base: p.r.p.Dtab, Local: p.local, Reason: reason, Bound: bound}
}

// clientServiceStats returns the client × service metrics of be for this
// logical name.
func (p *pathEntry) clientServiceStats(be *boundEntry) *telemetry.RequestStats {
	if st, ok := p.csStats.Load(be); ok {
		return st.(*telemetry.RequestStats)
	}
	// Created under the lock: NewRequestStats registers a gauge, which a
	// losing duplicate would replace.
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.csStats.Load(be); ok {
		return st.(*telemetry.RequestStats)
	}
	st := telemetry.NewRequestStats(telemetry.ClientServiceScope(telemetry.ClientScope(p.r.p.Scope, be.id), p.nameStr))
	p.csStats.Store(be, st)
	return st
}
