package storage

import (
	"maps"
	"slices"
	"sync"

	"github.com/linnet-mesh/linnet/internal/watch"
)

// Feed publishes the state of a whole store to observers: it implements
// Store.Observe and Store.ObserveList for backends that keep (or receive)
// the full set of namespaces, such as an in-process map or one watch on an
// etcd prefix. Per-namespace cells exist only while somebody subscribes.
//
// Calls that change the state (Reset, Set, Fail) must be serialised by the
// caller, in the order the changes happened; observers are called
// synchronously from them.
type Feed struct {
	mu    sync.Mutex
	state watch.State // Pending until the first Reset
	err   error
	nss   map[string]*VersionedDtab
	bad   map[string]error // namespaces whose stored value is unreadable
	cells map[string]*feedCell
	list  *watch.Var[watch.Activity[[]string]]
}

type feedCell struct {
	v    *watch.Var[watch.Activity[Observation]]
	refs int
}

// NewFeed returns a Feed in the Pending state.
func NewFeed() *Feed {
	return &Feed{
		nss:   map[string]*VersionedDtab{},
		bad:   map[string]error{},
		cells: map[string]*feedCell{},
		list:  watch.NewVar(watch.PendingActivity[[]string]()),
	}
}

// Reset replaces the whole state (the Feed becomes Ok). all is not retained.
func (f *Feed) Reset(all map[string]*VersionedDtab) { f.ResetWith(all, nil) }

// ResetWith is Reset for a snapshot in which the namespaces of bad hold
// values that could not be read: they exist, and observing them fails
// with their error. Unlike Reset followed by SetError, no observer sees
// such a namespace absent for an instant.
func (f *Feed) ResetWith(all map[string]*VersionedDtab, bad map[string]error) {
	f.mu.Lock()
	f.state, f.err = watch.Ok, nil
	f.nss = maps.Clone(all)
	if f.nss == nil {
		f.nss = map[string]*VersionedDtab{}
	}
	clear(f.bad)
	for ns, err := range bad {
		delete(f.nss, ns)
		f.bad[ns] = err
	}
	type upd struct {
		v *watch.Var[watch.Activity[Observation]]
		a watch.Activity[Observation]
	}
	var ups []upd
	for ns, c := range f.cells {
		ups = append(ups, upd{c.v, f.activityLocked(ns)})
	}
	names := f.namesLocked()
	f.mu.Unlock()
	for _, u := range ups {
		setIfChanged(u.v, u.a)
	}
	if old := f.list.Get(); old.State != watch.Ok || !slices.Equal(old.Value, names) {
		f.list.Set(watch.OkActivity(names))
	}
}

// Set records the new state of one namespace (nil: deleted). Before the
// first Reset it only updates the snapshot.
func (f *Feed) Set(ns string, d *VersionedDtab) {
	f.mu.Lock()
	existed := f.existsLocked(ns)
	delete(f.bad, ns)
	if d == nil {
		delete(f.nss, ns)
	} else {
		f.nss[ns] = d
	}
	ok := f.state == watch.Ok
	var cell *watch.Var[watch.Activity[Observation]]
	if c := f.cells[ns]; c != nil {
		cell = c.v
	}
	var names []string
	listChanged := existed != (d != nil)
	if listChanged {
		names = f.namesLocked()
	}
	f.mu.Unlock()
	if !ok {
		return
	}
	if cell != nil {
		setIfChanged(cell, watch.OkActivity(d))
	}
	if listChanged {
		f.list.Set(watch.OkActivity(names))
	}
}

// SetError records that the stored value of ns exists but cannot be read
// (e.g. text that does not parse as a dtab): ns is listed, and observers of
// ns see Failed with err until the next Set or Reset.
func (f *Feed) SetError(ns string, err error) {
	f.mu.Lock()
	existed := f.existsLocked(ns)
	delete(f.nss, ns)
	f.bad[ns] = err
	ok := f.state == watch.Ok
	var cell *watch.Var[watch.Activity[Observation]]
	if c := f.cells[ns]; c != nil {
		cell = c.v
	}
	names := f.namesLocked()
	f.mu.Unlock()
	if !ok {
		return
	}
	if cell != nil {
		cell.Set(watch.FailedActivity[Observation](err))
	}
	if !existed {
		f.list.Set(watch.OkActivity(names))
	}
}

func (f *Feed) existsLocked(ns string) bool {
	_, ok := f.nss[ns]
	_, bad := f.bad[ns]
	return ok || bad
}

// Fail makes every observation Failed with err until the next Reset.
func (f *Feed) Fail(err error) {
	f.mu.Lock()
	f.state, f.err = watch.Failed, err
	var cells []*watch.Var[watch.Activity[Observation]]
	for _, c := range f.cells {
		cells = append(cells, c.v)
	}
	f.mu.Unlock()
	for _, c := range cells {
		c.Set(watch.FailedActivity[Observation](err))
	}
	f.list.Set(watch.FailedActivity[[]string](err))
}

// Snapshot returns the current dtab of ns (nil if absent) and whether the
// Feed is Ok.
func (f *Feed) Snapshot(ns string) (*VersionedDtab, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nss[ns], f.state == watch.Ok
}

// Observe implements Store.Observe.
func (f *Feed) Observe(ns string) watch.Value[watch.Activity[Observation]] {
	return feedValue{f: f, ns: ns}
}

// ObserveList implements Store.ObserveList.
func (f *Feed) ObserveList() watch.Value[watch.Activity[[]string]] { return f.list }

func (f *Feed) namesLocked() []string {
	names := slices.AppendSeq(make([]string, 0, len(f.nss)+len(f.bad)), maps.Keys(f.nss))
	names = slices.AppendSeq(names, maps.Keys(f.bad))
	slices.Sort(names)
	return names
}

func (f *Feed) activityLocked(ns string) watch.Activity[Observation] {
	switch f.state {
	case watch.Ok:
		if err := f.bad[ns]; err != nil {
			return watch.FailedActivity[Observation](err)
		}
		return watch.OkActivity(f.nss[ns])
	case watch.Failed:
		return watch.FailedActivity[Observation](f.err)
	default:
		return watch.PendingActivity[Observation]()
	}
}

// setIfChanged avoids waking observers when a Reset leaves a namespace as it
// was (same version, or still absent).
func setIfChanged(v *watch.Var[watch.Activity[Observation]], a watch.Activity[Observation]) {
	old := v.Get()
	if old.State == watch.Ok && a.State == watch.Ok {
		if old.Value == nil && a.Value == nil {
			return
		}
		if old.Value != nil && a.Value != nil && old.Value.Version.Equal(a.Value.Version) {
			return
		}
	}
	v.Set(a)
}

type feedValue struct {
	f  *Feed
	ns string
}

func (x feedValue) Get() watch.Activity[Observation] {
	x.f.mu.Lock()
	defer x.f.mu.Unlock()
	return x.f.activityLocked(x.ns)
}

func (x feedValue) Subscribe(fn func(watch.Activity[Observation])) func() {
	f := x.f
	f.mu.Lock()
	c := f.cells[x.ns]
	if c == nil {
		c = &feedCell{v: watch.NewVar(f.activityLocked(x.ns))}
		f.cells[x.ns] = c
	}
	c.refs++
	f.mu.Unlock()
	cancel := c.v.Subscribe(fn)
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			f.mu.Lock()
			c.refs--
			if c.refs == 0 && f.cells[x.ns] == c {
				delete(f.cells, x.ns)
			}
			f.mu.Unlock()
		})
	}
}
