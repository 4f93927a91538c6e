package remote

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// This file is what the interpreters' admin pages
// (/<router>/interpreter_state/<kind>/<ns>.json) show: every running
// watch with its last value, and the life of the request or stream that
// feeds it (Linkerd 1.x's VarState and PollState/StreamState).

// BindKey is the key of a bind watch: the dtab's text and the path,
// which SplitBindKey reverses. All three interpreters key their bind
// watches with it.
func BindKey(dtabText, path string) string { return dtabText + "\x00" + path }

// SplitBindKey returns the dtab text and the path of a BindKey.
func SplitBindKey(key string) (dtabText, path string) {
	d, p, _ := strings.Cut(key, "\x00")
	return d, p
}

// Status records the remote side of one watch: when its requests (a
// poll, or the opening of a stream) went out, when answers came back and
// the last failure. The interpreters feed it through StatusOf(ctx) in
// their run loops; every method is safe on a nil *Status (a context that
// is not a watch's), so callers need no checks.
type Status struct {
	mu        sync.Mutex
	streaming bool
	requests  uint64
	responses uint64
	failures  uint64
	lastReq   time.Time
	lastRsp   time.Time
	lastFail  time.Time
	lastErr   string
}

type statusKey struct{}

// StatusOf returns the Status of the watch whose run context ctx is (or
// one derived from it), or nil.
func StatusOf(ctx context.Context) *Status {
	s, _ := ctx.Value(statusKey{}).(*Status)
	return s
}

// Request records that a request was sent or a stream opened.
func (s *Status) Request() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.requests++
	s.lastReq = time.Now()
	s.mu.Unlock()
}

// Response records an answer (a poll's reply, a stream's document): the
// remote side is reached, and the last error is cleared.
func (s *Status) Response() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.responses++
	s.streaming = true
	s.lastRsp = time.Now()
	s.lastErr = ""
	s.mu.Unlock()
}

// Fail records a failed request or a stream that ended with err.
func (s *Status) Fail(err error) {
	if s == nil || err == nil {
		return
	}
	s.mu.Lock()
	s.failures++
	s.streaming = false
	s.lastFail = time.Now()
	s.lastErr = err.Error()
	s.mu.Unlock()
}

// StreamState is a snapshot of a Status, encoded on the state pages
// (times in RFC 3339 with nanoseconds, UTC; absent when it never
// happened).
type StreamState struct {
	// Streaming is true once namerd answered and until a request or
	// stream fails.
	Streaming      bool       `json:"streaming"`
	Requests       uint64     `json:"requests"`
	Responses      uint64     `json:"responses"`
	Failures       uint64     `json:"failures"`
	LastRequestAt  *time.Time `json:"lastRequestAt,omitempty"`
	LastResponseAt *time.Time `json:"lastResponseAt,omitempty"`
	LastFailureAt  *time.Time `json:"lastFailureAt,omitempty"`
	// Error is the last failure, cleared by the next answer.
	Error string `json:"error,omitempty"`
}

func (s *Status) snapshot() StreamState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StreamState{
		Streaming: s.streaming, Requests: s.requests, Responses: s.responses, Failures: s.failures,
		LastRequestAt: timePtr(s.lastReq), LastResponseAt: timePtr(s.lastRsp), LastFailureAt: timePtr(s.lastFail),
		Error: s.lastErr,
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// WatchState is a snapshot of one running watch of a Watches.
type WatchState[T any] struct {
	Key string
	// Value is the watch's last value.
	Value T
	// Subscribers is the number of subscriptions holding the watch.
	Subscribers int
	// StartedAt is when the first subscriber started it; UpdatedAt when
	// its value last changed (zero: never).
	StartedAt, UpdatedAt time.Time
	// Updates counts the values set since it started.
	Updates uint64
	Stream  StreamState
}

// watchLife is what a running watch records about itself.
type watchLife struct {
	status  Status
	started time.Time
	mu      sync.Mutex
	updated time.Time
	updates uint64
}

func (l *watchLife) recordUpdate() {
	l.mu.Lock()
	l.updated = time.Now()
	l.updates++
	l.mu.Unlock()
}

// Snapshot returns the running watches, sorted by key. It is safe to
// call while they run.
func (ws *Watches[T]) Snapshot() []WatchState[T] {
	type entry struct {
		key  string
		s    *shared[T]
		refs int
	}
	ws.mu.Lock()
	es := make([]entry, 0, len(ws.m))
	for k, s := range ws.m {
		es = append(es, entry{k, s, s.refs})
	}
	ws.mu.Unlock()
	sort.Slice(es, func(i, j int) bool { return es[i].key < es[j].key })
	out := make([]WatchState[T], len(es))
	for i, e := range es {
		l := e.s.life
		l.mu.Lock()
		updated, updates := l.updated, l.updates
		l.mu.Unlock()
		out[i] = WatchState[T]{
			Key: e.key, Value: e.s.v.Get(), Subscribers: e.refs,
			StartedAt: l.started, UpdatedAt: updated, Updates: updates,
			Stream: l.status.snapshot(),
		}
	}
	return out
}

// VarState is one watch on a state page, after Linkerd 1.x's VarState:
// whether it runs, when it started and last changed, and its value.
// Linnet drops a watch when its last subscriber leaves, so a listed watch
// is always running and there is no lastStoppedAt.
type VarState struct {
	Running       bool       `json:"running"`
	LastStartedAt *time.Time `json:"lastStartedAt,omitempty"`
	LastUpdatedAt *time.Time `json:"lastUpdatedAt,omitempty"`
	Updates       uint64     `json:"updates"`
	Subscribers   int        `json:"subscribers"`
	Value         any        `json:"value"`
}

func varState[T any](w WatchState[T], value any) VarState {
	return VarState{
		Running: true, LastStartedAt: timePtr(w.StartedAt), LastUpdatedAt: timePtr(w.UpdatedAt),
		Updates: w.Updates, Subscribers: w.Subscribers, Value: value,
	}
}

// BindValue is a bind watch's value: the state of the activity, the
// bound tree in dtab syntax (leaves are bound ids, followed by their
// residual path when there is one), its leaves, and the failure.
type BindValue struct {
	State  string      `json:"state"`
	Tree   string      `json:"tree,omitempty"`
	Leaves []BoundLeaf `json:"leaves,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// BoundLeaf is one leaf of a bound tree: its id and residual path
// (Linkerd's {"id", "path"}).
type BoundLeaf struct {
	ID   string `json:"id"`
	Path string `json:"path"`
}

// AddrValue is an address watch's value.
type AddrValue struct {
	// State is bound, neg, pending or failed.
	State     string         `json:"state"`
	Addresses []string       `json:"addresses"`
	Meta      map[string]any `json:"meta,omitempty"`
	Error     string         `json:"error,omitempty"`
}

// BindValueOf renders a bound tree activity for a state page.
func BindValueOf(a watch.Activity[naming.BoundTree]) BindValue {
	v := BindValue{State: a.State.String()}
	switch a.State {
	case watch.Ok:
		v.Tree = dtab.ShowTreeFunc(a.Value, func(b *naming.Bound) string {
			if len(b.Residual) == 0 {
				return b.ID.String()
			}
			return b.ID.String() + b.Residual.String()
		})
		for _, b := range naming.BoundLeaves(a.Value) {
			v.Leaves = append(v.Leaves, BoundLeaf{ID: b.ID.String(), Path: b.Residual.String()})
		}
	case watch.Failed:
		if a.Err != nil {
			v.Error = a.Err.Error()
		}
	}
	return v
}

// AddrValueOf renders an address set for a state page (addresses as
// host:port, sorted).
func AddrValueOf(a naming.Addr) AddrValue {
	v := AddrValue{Addresses: []string{}, Meta: a.Meta}
	switch a.State {
	case naming.AddrBound:
		v.State = "bound"
	case naming.AddrNeg:
		v.State = "neg"
	case naming.AddrFailed:
		v.State = "failed"
	default:
		v.State = "pending"
	}
	for _, x := range a.Addrs {
		v.Addresses = append(v.Addresses, x.HostPort())
	}
	sort.Strings(v.Addresses)
	if a.Err != nil {
		v.Error = a.Err.Error()
	}
	return v
}

// StateDoc builds an interpreter's state page in Linkerd 1.x's shape:
//
//	{"bind": {"<path>": {"<dtab>": {"state": VarState, "<stream>": StreamState}}},
//	 "<addr>": {"<bound id>": {"state": VarState, "<stream>": StreamState}}}
//
// addrKey and streamKey name the address section and each watch's
// request record as the matching Linkerd interpreter does ("addr" and
// "poll" for io.l5d.namerd; "resolve" and "watch" for io.l5d.mesh). The
// VarState values are a BindValue or an AddrValue. An empty dtab is the
// key "".
func StateDoc(bind *Watches[watch.Activity[naming.BoundTree]], addr *Watches[naming.Addr], addrKey, streamKey string) map[string]any {
	binds := map[string]map[string]map[string]any{}
	for _, w := range bind.Snapshot() {
		d, p := SplitBindKey(w.Key)
		if binds[p] == nil {
			binds[p] = map[string]map[string]any{}
		}
		binds[p][d] = map[string]any{"state": varState(w, BindValueOf(w.Value)), streamKey: w.Stream}
	}
	addrs := map[string]map[string]any{}
	for _, w := range addr.Snapshot() {
		addrs[w.Key] = map[string]any{"state": varState(w, AddrValueOf(w.Value)), streamKey: w.Stream}
	}
	return map[string]any{"bind": binds, addrKey: addrs}
}
