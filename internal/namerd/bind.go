package namerd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/api"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// viewMode says what a nameView renders.
type viewMode uint8

const (
	modeBind    viewMode = iota // the bound tree with every leaf's addresses
	modeAddr                    // the addresses of one concrete bound id
	modeResolve                 // bind, pick one leaf, its addresses
)

// bind serves /api/1/bind/<ns> (spec §3.1).
func (c *Controller) bind(w http.ResponseWriter, r *http.Request, ns string) {
	c.serveView(w, r, ns, modeBind, "")
}

// addr serves /api/1/addr/<ns> (spec §3.2).
func (c *Controller) addr(w http.ResponseWriter, r *http.Request, ns string) {
	c.serveView(w, r, ns, modeAddr, "")
}

// resolve serves /api/1/resolve/<ns> (spec §3.3).
func (c *Controller) resolve(w http.ResponseWriter, r *http.Request, ns string) {
	c.serveView(w, r, ns, modeResolve, api.MediaJSON)
}

// queryPath parses the required `path` parameter, answering 400 itself.
func queryPath(w http.ResponseWriter, r *http.Request) (dtab.Path, bool) {
	q := r.URL.Query()
	if !q.Has("path") {
		plain(w, http.StatusBadRequest, "Missing required parameter: path")
		return nil, false
	}
	raw := q.Get("path")
	p, err := dtab.ParsePath(raw)
	if err != nil {
		plain(w, http.StatusBadRequest, "Invalid path: "+raw+" / "+err.Error())
		return nil, false
	}
	return p, true
}

// queryDtab parses the optional `dtab` parameter, answering 400 itself.
func queryDtab(w http.ResponseWriter, r *http.Request) (dtab.Dtab, bool) {
	d, err := dtab.Parse(r.URL.Query().Get("dtab"))
	if err != nil {
		plain(w, http.StatusBadRequest, "Invalid dtab: "+err.Error())
		return nil, false
	}
	return d, true
}

func (c *Controller) serveView(w http.ResponseWriter, r *http.Request, ns string, mode viewMode, contentType string) {
	path, ok := queryPath(w, r)
	if !ok {
		return
	}
	var extra dtab.Dtab
	if mode != modeAddr {
		if extra, ok = queryDtab(w, r); !ok {
			return
		}
	} else {
		path = naming.StripTransformerPrefix(path)
	}
	v := &nameView{c: c, ns: ns, extra: extra, path: path, mode: mode, sig: newSignal()}
	defer v.close()
	ctx := r.Context()
	if !watching(r) {
		doc, err := v.next(ctx)
		switch {
		case err == nil:
			writeBody(w, http.StatusOK, nonEmpty(contentType, api.MediaJSON), doc)
		case ctx.Err() != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			plain(w, http.StatusInternalServerError, err.Error()+"\n")
		}
		return
	}
	defer c.streaming()()
	d := newDocWriter(w)
	d.start(nonEmpty(contentType, api.MediaJSON))
	for {
		doc, err := v.next(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.fail(err)
			return
		}
		if err := d.doc(doc); err != nil {
			return
		}
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// nameView follows everything one bind/addr/resolve answer depends on: the
// namespace's dtab, the binding through it, and the address sets of the
// bound leaves it shows. Subscriptions push into latest-value slots and poke
// one signal; next re-derives the document from the newest state, so a slow
// client sees fewer, never stale, documents.
type nameView struct {
	c     *Controller
	ns    string
	extra dtab.Dtab
	path  dtab.Path
	mode  viewMode
	sig   signal

	obs       *latest[watch.Activity[storage.Observation]]
	cancelObs func()
	obsGen    uint64
	haveDtab  bool
	nsVersion storage.Version

	binding    *latest[watch.Activity[naming.BoundTree]]
	cancelBind func()
	bindGen    uint64
	tree       naming.BoundTree
	picked     *naming.Bound // resolve: the leaf chosen for this tree

	addrs map[*naming.Bound]*addrSub
}

type addrSub struct {
	l      *latest[naming.Addr]
	cancel func()
}

// next blocks until the state has changed and nothing in it is pending, and
// returns its rendering (which may equal the previous one: the docWriter
// drops duplicates).
func (v *nameView) next(ctx context.Context) ([]byte, error) {
	if v.cancelObs == nil {
		if v.mode == modeAddr {
			// The namespace dtab plays no part in resolving a bound id.
			v.obs, v.cancelObs = follow[watch.Activity[storage.Observation]](watch.Const[watch.Activity[storage.Observation]]{V: watch.OkActivity[storage.Observation](nil)}, v.sig)
		} else {
			v.obs, v.cancelObs = follow(v.c.store.Observe(v.ns), v.sig)
		}
	}
	// Every subscription pokes the signal when it starts, so the first wait
	// is short; later ones last until something changes.
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-v.sig:
		}
		doc, ready, err := v.step()
		if err != nil || ready {
			return doc, err
		}
	}
}

// step brings the subscriptions in line with the newest state and renders
// it if nothing is pending.
func (v *nameView) step() (doc []byte, ready bool, err error) {
	obs, gen := v.obs.get()
	if gen != v.obsGen {
		v.obsGen = gen
		switch obs.State {
		case watch.Pending:
			return nil, false, nil
		case watch.Failed:
			return nil, false, fmt.Errorf("dtab namespace %q: %w", v.ns, obs.Err)
		}
		var nsDtab dtab.Dtab
		var version storage.Version
		if obs.Value != nil {
			nsDtab, version = obs.Value.Dtab, obs.Value.Version
		}
		if !v.haveDtab || !version.Equal(v.nsVersion) { // absent: nil version
			v.haveDtab, v.nsVersion = true, version
			v.rebind(nsDtab.Concat(v.extra))
		}
	}
	if !v.haveDtab || v.binding == nil {
		return nil, false, nil
	}
	b, bgen := v.binding.get()
	if bgen != v.bindGen {
		v.bindGen = bgen
		switch b.State {
		case watch.Pending:
			v.setTree(dtab.NegTree[*naming.Bound]())
			return nil, false, nil
		case watch.Failed:
			// The stream ends with the error (spec §4); routers reconnect.
			return nil, false, b.Err
		}
		v.setTree(b.Value)
	}
	if b.State != watch.Ok {
		return nil, false, nil
	}
	return v.render()
}

// rebind follows the binding of the view's path through d.
func (v *nameView) rebind(d dtab.Dtab) {
	if v.cancelBind != nil {
		v.cancelBind()
	}
	v.bindGen = 0
	v.binding, v.cancelBind = follow(v.c.interp.Bind(d, v.path), v.sig)
}

// setTree records a new bound tree and follows the address sets it needs.
func (v *nameView) setTree(t naming.BoundTree) {
	v.tree = t
	want := map[*naming.Bound]bool{}
	switch v.mode {
	case modeBind:
		for _, b := range naming.BoundLeaves(t) {
			want[b] = true
		}
	case modeAddr:
		if t.Kind == dtab.Leaf && t.Value != nil {
			want[t.Value] = true
		}
	case modeResolve:
		v.picked = nil
		if b, err := naming.Pick(t, rand.Float64); err == nil {
			v.picked = b
			want[b] = true
		}
	}
	for b, s := range v.addrs {
		if !want[b] {
			s.cancel()
			delete(v.addrs, b)
		}
	}
	if v.addrs == nil {
		v.addrs = map[*naming.Bound]*addrSub{}
	}
	for b := range want {
		if v.addrs[b] == nil && b.Addr != nil {
			l, cancel := follow(b.Addr, v.sig)
			v.addrs[b] = &addrSub{l: l, cancel: cancel}
		}
	}
}

// addrOf returns the current address set of b and whether it is known.
func (v *nameView) addrOf(b *naming.Bound) (naming.Addr, bool) {
	s := v.addrs[b]
	if s == nil {
		return naming.Addr{State: naming.AddrNeg}, true
	}
	a, gen := s.l.get()
	if gen == 0 || a.State == naming.AddrPending {
		return a, false
	}
	return a, true
}

func (v *nameView) render() ([]byte, bool, error) {
	switch v.mode {
	case modeBind:
		t, ok := v.apiTree(v.tree)
		if !ok {
			return nil, false, nil
		}
		b, err := api.Marshal(t)
		return b, err == nil, err
	case modeAddr:
		switch v.tree.Kind {
		case dtab.Leaf:
			a, ok := v.addrOf(v.tree.Value)
			if !ok {
				return nil, false, nil
			}
			b, err := api.Marshal(apiAddr(a))
			return b, err == nil, err
		case dtab.Neg:
			return []byte(`{"type":"neg"}`), true, nil
		case dtab.Empty:
			b, err := api.Marshal(api.Addr{Type: api.AddrBound})
			return b, err == nil, err
		default:
			return nil, false, fmt.Errorf("%s is not a concrete bound id", v.path)
		}
	default: // modeResolve
		if v.picked == nil {
			return []byte(`{"type":"neg"}`), true, nil
		}
		a, ok := v.addrOf(v.picked)
		if !ok {
			return nil, false, nil
		}
		b, err := api.Marshal(apiAddr(a))
		return b, err == nil, err
	}
}

// apiTree converts a bound tree for rendering; ok is false while a leaf's
// address is pending.
func (v *nameView) apiTree(t naming.BoundTree) (api.Tree, bool) {
	switch t.Kind {
	case dtab.Leaf:
		if t.Value == nil {
			return api.Tree{Type: api.TreeNeg}, true
		}
		a, ok := v.addrOf(t.Value)
		if !ok {
			return api.Tree{}, false
		}
		return api.Tree{Type: api.TreeLeaf, Bound: apiBound(t.Value, a)}, true
	case dtab.Alt:
		out := api.Tree{Type: api.TreeAlt, Alt: make([]api.Tree, len(t.Alts))}
		for i, c := range t.Alts {
			var ok bool
			if out.Alt[i], ok = v.apiTree(c); !ok {
				return api.Tree{}, false
			}
		}
		return out, true
	case dtab.Union:
		out := api.Tree{Type: api.TreeUnion, Union: make([]api.Weighted, len(t.Branches))}
		for i, br := range t.Branches {
			sub, ok := v.apiTree(br.Tree)
			if !ok {
				return api.Tree{}, false
			}
			out.Union[i] = api.Weighted{Weight: br.Weight, Tree: sub}
		}
		return out, true
	case dtab.Fail:
		return api.Tree{Type: api.TreeFail}, true
	case dtab.Empty:
		return api.Tree{Type: api.TreeEmpty}, true
	default:
		return api.Tree{Type: api.TreeNeg}, true
	}
}

func (v *nameView) close() {
	if v.cancelObs != nil {
		v.cancelObs()
	}
	if v.cancelBind != nil {
		v.cancelBind()
	}
	for _, s := range v.addrs {
		s.cancel()
	}
}

func apiBound(b *naming.Bound, a naming.Addr) *api.Bound {
	return &api.Bound{Addr: apiAddr(a), ID: b.ID.String(), Path: b.Residual.String()}
}

// apiAddr converts an address set. Addresses are sorted so that equal sets
// render identically (and streams drop them as duplicates).
func apiAddr(a naming.Addr) api.Addr {
	switch a.State {
	case naming.AddrBound:
		out := api.Addr{Type: api.AddrBound, Meta: a.Meta, Addrs: make([]api.Address, len(a.Addrs))}
		for i, x := range a.Addrs {
			meta := x.Meta
			if x.Weight != 0 && x.Weight != 1 {
				meta = make(map[string]any, len(x.Meta)+1)
				for k, v := range x.Meta {
					meta[k] = v
				}
				meta[api.MetaWeight] = x.Weight
			}
			out.Addrs[i] = api.Address{IP: x.Host, Port: x.Port, Meta: meta}
		}
		slices.SortFunc(out.Addrs, func(x, y api.Address) int {
			if c := strings.Compare(x.IP, y.IP); c != 0 {
				return c
			}
			return x.Port - y.Port
		})
		return out
	case naming.AddrFailed:
		msg := "address resolution failed"
		if a.Err != nil {
			msg = a.Err.Error()
		}
		return api.Addr{Type: api.AddrFailed, Cause: msg}
	case naming.AddrPending:
		return api.Addr{Type: api.AddrPending}
	default:
		return api.Addr{Type: api.AddrNeg}
	}
}
