// Package storagetest is the conformance suite every storage.Store backend
// runs: CRUD, versions and compare-and-swap, concurrent writers, and
// observation. Backends call Run from their tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t) })
//	}
//
// newStore must return an empty, independent store (a fresh directory, key
// prefix or Kubernetes namespace) and arrange its cleanup with t.Cleanup;
// the suite Closes stores itself too, so Close must tolerate a second call.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Timeout bounds each store call and each wait for an observation.
var Timeout = 10 * time.Second

// Run runs the whole suite, one subtest per property.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s storage.Store)
	}{
		{"Empty", testEmpty},
		{"CreateGet", testCreateGet},
		{"CreateExisting", testCreateExisting},
		{"RoundTrip", testRoundTrip},
		{"EmptyDtab", testEmptyDtab},
		{"UpdateCAS", testUpdateCAS},
		{"UpdateMissing", testUpdateMissing},
		{"Put", testPut},
		{"Delete", testDelete},
		{"Isolation", testIsolation},
		{"InvalidNamespace", testInvalidNamespace},
		{"ConcurrentSameVersion", testConcurrentSameVersion},
		{"ConcurrentCounter", testConcurrentCounter},
		{"Observe", testObserve},
		{"ObserveExisting", testObserveExisting},
		{"ObserveList", testObserveList},
		{"ObserveCancel", testObserveCancel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.f(t, s)
		})
	}
}

// Sample dtabs. Rich is chosen to exercise every name-tree form that a
// backend storing dtab text must round-trip.
var (
	Simple = dtab.Dtab{
		{Prefix: prefix("svc"), Dst: leaf("#", "io.l5d.fs")},
	}
	Other = dtab.Dtab{
		{Prefix: prefix("svc"), Dst: leaf("#", "io.l5d.k8s", "default", "http")},
		{Prefix: prefix("host", "world"), Dst: leaf("srv", "world-v1")},
	}
	Rich = dtab.Dtab{
		{Prefix: prefix("srv"), Dst: leaf("#", "io.l5d.fs")},
		{Prefix: dtab.Prefix{{Label: "svc"}, {Any: true}, {Label: "x"}}, Dst: dtab.AltTree(leaf("srv", "a"), dtab.NegTree[dtab.Path]())},
		{Prefix: prefix("svc", "world"), Dst: dtab.UnionTree(
			dtab.Weighted[dtab.Path]{Weight: 0.9, Tree: leaf("srv", "world-v1")},
			dtab.Weighted[dtab.Path]{Weight: 0.1, Tree: leaf("srv", "world-v2")},
		)},
		{Prefix: prefix("broken"), Dst: dtab.FailTree[dtab.Path]()},
		{Prefix: prefix("nothing"), Dst: dtab.EmptyTree[dtab.Path]()},
		{Prefix: prefix("inet"), Dst: leaf("$", "inet", "127.0.0.1", "8080")},
	}
)

func prefix(labels ...string) dtab.Prefix {
	p := make(dtab.Prefix, len(labels))
	for i, l := range labels {
		p[i] = dtab.PrefixElem{Label: l}
	}
	return p
}

func leaf(elems ...string) dtab.NameTree { return dtab.LeafTree(dtab.Path(elems)) }

// counterDtab encodes n as /count=>/n/<n>.
func counterDtab(n int) dtab.Dtab {
	return dtab.Dtab{{Prefix: prefix("count"), Dst: leaf("n", strconv.Itoa(n))}}
}

func counterOf(t *testing.T, d dtab.Dtab) int {
	t.Helper()
	if len(d) != 1 || d[0].Dst.Kind != dtab.Leaf || len(d[0].Dst.Value) != 2 {
		t.Fatalf("not a counter dtab: %+v", d)
	}
	n, err := strconv.Atoi(d[0].Dst.Value[1])
	if err != nil {
		t.Fatalf("not a counter dtab: %+v", d)
	}
	return n
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return c
}

func mustGet(t *testing.T, s storage.Store, ns string) storage.VersionedDtab {
	t.Helper()
	v, err := s.Get(ctx(t), ns)
	if err != nil {
		t.Fatalf("Get(%q): %v", ns, err)
	}
	if len(v.Version) == 0 {
		t.Fatalf("Get(%q): empty version", ns)
	}
	return v
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func wantDtab(t *testing.T, what string, got, want dtab.Dtab) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s: got dtab %+v, want %+v", what, got, want)
	}
}

func wantList(t *testing.T, s storage.Store, want ...string) {
	t.Helper()
	got, err := s.List(ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List: got %q, want %q", got, want)
	}
}

func testEmpty(t *testing.T, s storage.Store) {
	wantList(t, s)
	_, err := s.Get(ctx(t), "missing")
	wantErr(t, "Get of a missing namespace", err, storage.ErrNotFound)
	wantErr(t, "Delete of a missing namespace", s.Delete(ctx(t), "missing"), storage.ErrNotFound)
}

func testCreateGet(t *testing.T, s storage.Store) {
	if err := s.Create(ctx(t), "external", Simple); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got := mustGet(t, s, "external")
	wantDtab(t, "Get after Create", got.Dtab, Simple)
	again := mustGet(t, s, "external")
	if !again.Version.Equal(got.Version) {
		t.Fatalf("version changed without a write: %s then %s", got.Version, again.Version)
	}
	if err := s.Create(ctx(t), "internal", Other); err != nil {
		t.Fatalf("Create: %v", err)
	}
	wantList(t, s, "external", "internal")
}

func testCreateExisting(t *testing.T, s storage.Store) {
	if err := s.Create(ctx(t), "ns", Simple); err != nil {
		t.Fatalf("Create: %v", err)
	}
	before := mustGet(t, s, "ns")
	wantErr(t, "second Create", s.Create(ctx(t), "ns", Other), storage.ErrExists)
	after := mustGet(t, s, "ns")
	wantDtab(t, "Get after refused Create", after.Dtab, Simple)
	if !after.Version.Equal(before.Version) {
		t.Fatalf("refused Create changed the version: %s to %s", before.Version, after.Version)
	}
}

func testRoundTrip(t *testing.T, s storage.Store) {
	if err := s.Create(ctx(t), "rich", Rich); err != nil {
		t.Fatalf("Create: %v", err)
	}
	wantDtab(t, "Get", mustGet(t, s, "rich").Dtab, Rich)
}

func testEmptyDtab(t *testing.T, s storage.Store) {
	if err := s.Create(ctx(t), "blank", dtab.Dtab{}); err != nil {
		t.Fatalf("Create with an empty dtab: %v", err)
	}
	got := mustGet(t, s, "blank")
	if len(got.Dtab) != 0 {
		t.Fatalf("Get: got %+v, want an empty dtab", got.Dtab)
	}
	wantList(t, s, "blank")
}

func testUpdateCAS(t *testing.T, s storage.Store) {
	if err := s.Create(ctx(t), "ns", Simple); err != nil {
		t.Fatalf("Create: %v", err)
	}
	v1 := mustGet(t, s, "ns").Version
	if err := s.Update(ctx(t), "ns", Other, v1); err != nil {
		t.Fatalf("Update with the current version: %v", err)
	}
	got := mustGet(t, s, "ns")
	wantDtab(t, "Get after Update", got.Dtab, Other)
	v2 := got.Version
	if v2.Equal(v1) {
		t.Fatalf("Update kept version %s", v1)
	}
	wantErr(t, "Update with a stale version", s.Update(ctx(t), "ns", Rich, v1), storage.ErrVersionMismatch)
	wantErr(t, "Update with a bogus version", s.Update(ctx(t), "ns", Rich, storage.Version("bogus")), storage.ErrVersionMismatch)
	wantErr(t, "Update with an empty version", s.Update(ctx(t), "ns", Rich, nil), storage.ErrVersionMismatch)
	after := mustGet(t, s, "ns")
	wantDtab(t, "Get after refused Updates", after.Dtab, Other)
	if !after.Version.Equal(v2) {
		t.Fatalf("refused Update changed the version: %s to %s", v2, after.Version)
	}
	if err := s.Update(ctx(t), "ns", Rich, v2); err != nil {
		t.Fatalf("second Update: %v", err)
	}
	v3 := mustGet(t, s, "ns").Version
	if v3.Equal(v1) || v3.Equal(v2) {
		t.Fatalf("version reused: %s after %s, %s", v3, v1, v2)
	}
}

func testUpdateMissing(t *testing.T, s storage.Store) {
	wantErr(t, "Update of a missing namespace", s.Update(ctx(t), "missing", Simple, storage.Version{0, 0, 0, 0, 0, 0, 0, 1}), storage.ErrNotFound)
	_, err := s.Get(ctx(t), "missing")
	wantErr(t, "Get after refused Update", err, storage.ErrNotFound)
}

func testPut(t *testing.T, s storage.Store) {
	if err := s.Put(ctx(t), "ns", Simple); err != nil {
		t.Fatalf("Put creating: %v", err)
	}
	first := mustGet(t, s, "ns")
	wantDtab(t, "Get after Put", first.Dtab, Simple)
	seen := []storage.Version{first.Version}
	for i, d := range []dtab.Dtab{Other, Other, Rich} {
		if err := s.Put(ctx(t), "ns", d); err != nil {
			t.Fatalf("Put #%d: %v", i+2, err)
		}
		got := mustGet(t, s, "ns")
		wantDtab(t, fmt.Sprintf("Get after Put #%d", i+2), got.Dtab, d)
		for _, v := range seen {
			if got.Version.Equal(v) {
				t.Fatalf("Put #%d reused version %s", i+2, v)
			}
		}
		seen = append(seen, got.Version)
	}
	wantList(t, s, "ns")
}

func testDelete(t *testing.T, s storage.Store) {
	for _, ns := range []string{"a", "b"} {
		if err := s.Create(ctx(t), ns, Simple); err != nil {
			t.Fatalf("Create(%s): %v", ns, err)
		}
	}
	if err := s.Delete(ctx(t), "a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx(t), "a")
	wantErr(t, "Get after Delete", err, storage.ErrNotFound)
	wantErr(t, "second Delete", s.Delete(ctx(t), "a"), storage.ErrNotFound)
	wantList(t, s, "b")
	if err := s.Create(ctx(t), "a", Other); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	wantDtab(t, "Get after re-Create", mustGet(t, s, "a").Dtab, Other)
}

func testIsolation(t *testing.T, s storage.Store) {
	// Names chosen so that a backend using naive prefixes would confuse them.
	names := []string{"team", "team-a", "team.a", "teama"}
	for i, ns := range names {
		if err := s.Create(ctx(t), ns, counterDtab(i)); err != nil {
			t.Fatalf("Create(%s): %v", ns, err)
		}
	}
	if err := s.Delete(ctx(t), "team"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for i, ns := range names[1:] {
		if got := counterOf(t, mustGet(t, s, ns).Dtab); got != i+1 {
			t.Fatalf("Get(%s): got counter %d, want %d", ns, got, i+1)
		}
	}
	wantList(t, s, names[1:]...)
}

func testInvalidNamespace(t *testing.T, s storage.Store) {
	wantErr(t, `Create("")`, s.Create(ctx(t), "", Simple), storage.ErrInvalidNamespace)
	wantErr(t, `Put("")`, s.Put(ctx(t), "", Simple), storage.ErrInvalidNamespace)
	wantErr(t, `Create with a control character`, s.Create(ctx(t), "a\nb", Simple), storage.ErrInvalidNamespace)
	wantList(t, s)
}

func testConcurrentSameVersion(t *testing.T, s storage.Store) {
	if err := s.Create(ctx(t), "ns", counterDtab(0)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	v := mustGet(t, s, "ns").Version
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			errs[i] = s.Update(ctx(t), "ns", counterDtab(i+1), v)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both won with version %s", winner, i, v)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrVersionMismatch):
			t.Fatalf("writer %d: got %v, want success or %v", i, err, storage.ErrVersionMismatch)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won: %v", errs)
	}
	if got := counterOf(t, mustGet(t, s, "ns").Dtab); got != winner+1 {
		t.Fatalf("stored counter %d, but writer %d (counter %d) won", got, winner, winner+1)
	}
}

// testConcurrentCounter runs read-modify-write loops from several writers:
// with a correct compare-and-swap no increment is lost.
func testConcurrentCounter(t *testing.T, s storage.Store) {
	if err := s.Create(ctx(t), "ns", counterDtab(0)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	const writers, each = 4, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failure error
	acked := make([]int, 0, writers*each)
	for range writers {
		wg.Go(func() {
			for done := 0; done < each; {
				cur, err := s.Get(ctx(t), "ns")
				if err == nil {
					n := counterOf(t, cur.Dtab)
					err = s.Update(ctx(t), "ns", counterDtab(n+1), cur.Version)
					if err == nil {
						done++
						mu.Lock()
						acked = append(acked, n+1)
						mu.Unlock()
						continue
					}
				}
				if !errors.Is(err, storage.ErrVersionMismatch) {
					mu.Lock()
					failure = err
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if failure != nil {
		t.Fatalf("writer failed: %v", failure)
	}
	slices.Sort(acked)
	for i, n := range acked {
		if n != i+1 {
			t.Fatalf("acknowledged counters %v: %d written twice or lost", acked, i+1)
		}
	}
	if got := counterOf(t, mustGet(t, s, "ns").Dtab); got != writers*each {
		t.Fatalf("final counter %d, want %d", got, writers*each)
	}
}

// observer collects the values of a watch.Value on a channel.
type observer[T any] struct {
	ch     chan watch.Activity[T]
	cancel func()
}

func observe[T any](t *testing.T, v watch.Value[watch.Activity[T]]) *observer[T] {
	o := &observer[T]{ch: make(chan watch.Activity[T], 1024)}
	o.cancel = v.Subscribe(func(a watch.Activity[T]) {
		select {
		case o.ch <- a:
		default:
			t.Errorf("observer fell 1024 values behind")
		}
	})
	t.Cleanup(o.cancel)
	return o
}

// await returns the first Ok value satisfying ok; Failed values fail the test.
func (o *observer[T]) await(t *testing.T, what string, ok func(T) bool) T {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		select {
		case a := <-o.ch:
			switch a.State {
			case watch.Failed:
				t.Fatalf("%s: observation failed: %v", what, a.Err)
			case watch.Ok:
				if ok(a.Value) {
					return a.Value
				}
			}
		case <-timer.C:
			t.Fatalf("%s: not observed within %v", what, Timeout)
		}
	}
}

func hasVersion(v storage.Version) func(storage.Observation) bool {
	return func(o storage.Observation) bool { return o != nil && o.Version.Equal(v) }
}

func absent(o storage.Observation) bool { return o == nil }

func testObserve(t *testing.T, s storage.Store) {
	o := observe(t, s.Observe("ns"))
	o.await(t, "absent namespace", absent)
	if err := s.Create(ctx(t), "ns", Simple); err != nil {
		t.Fatalf("Create: %v", err)
	}
	v1 := mustGet(t, s, "ns").Version
	got := o.await(t, "Create", hasVersion(v1))
	wantDtab(t, "observed after Create", got.Dtab, Simple)
	if err := s.Update(ctx(t), "ns", Rich, v1); err != nil {
		t.Fatalf("Update: %v", err)
	}
	v2 := mustGet(t, s, "ns").Version
	got = o.await(t, "Update", hasVersion(v2))
	wantDtab(t, "observed after Update", got.Dtab, Rich)
	// Writes to another namespace are not this observer's business, but must
	// not disturb it.
	if err := s.Put(ctx(t), "other", Other); err != nil {
		t.Fatalf("Put(other): %v", err)
	}
	if err := s.Delete(ctx(t), "ns"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	o.await(t, "Delete", absent)
	if err := s.Put(ctx(t), "ns", Other); err != nil {
		t.Fatalf("Put: %v", err)
	}
	v3 := mustGet(t, s, "ns").Version
	got = o.await(t, "Put after Delete", hasVersion(v3))
	wantDtab(t, "observed after Put", got.Dtab, Other)
	if a := s.Observe("ns").Get(); a.State == watch.Ok && a.Value != nil && !a.Value.Version.Equal(v3) {
		t.Fatalf("Get on the observation: version %s, want %s", a.Value.Version, v3)
	}
}

func testObserveExisting(t *testing.T, s storage.Store) {
	if err := s.Create(ctx(t), "ns", Other); err != nil {
		t.Fatalf("Create: %v", err)
	}
	v := mustGet(t, s, "ns").Version
	o := observe(t, s.Observe("ns"))
	got := o.await(t, "existing namespace", hasVersion(v))
	wantDtab(t, "observed", got.Dtab, Other)
	// A second, independent subscription sees the same state.
	o2 := observe(t, s.Observe("ns"))
	o2.await(t, "second subscription", hasVersion(v))
}

func testObserveList(t *testing.T, s storage.Store) {
	o := observe(t, s.ObserveList())
	o.await(t, "empty list", func(l []string) bool { return len(l) == 0 })
	for _, ns := range []string{"b", "a"} {
		if err := s.Create(ctx(t), ns, Simple); err != nil {
			t.Fatalf("Create(%s): %v", ns, err)
		}
	}
	o.await(t, "list after Creates", func(l []string) bool { return slices.Equal(l, []string{"a", "b"}) })
	if err := s.Delete(ctx(t), "a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	o.await(t, "list after Delete", func(l []string) bool { return slices.Equal(l, []string{"b"}) })
}

func testObserveCancel(t *testing.T, s storage.Store) {
	var mu sync.Mutex
	calls := 0
	cancel := s.Observe("ns").Subscribe(func(watch.Activity[storage.Observation]) {
		mu.Lock()
		calls++
		mu.Unlock()
	})
	o := observe(t, s.Observe("ns"))
	o.await(t, "absent namespace", absent)
	cancel()
	mu.Lock()
	before := calls
	mu.Unlock()
	if err := s.Create(ctx(t), "ns", Simple); err != nil {
		t.Fatalf("Create: %v", err)
	}
	// The remaining subscriber sees the write; the cancelled one must not.
	o.await(t, "Create", hasVersion(mustGet(t, s, "ns").Version))
	mu.Lock()
	after := calls
	mu.Unlock()
	if after != before {
		t.Fatalf("cancelled subscriber called %d more times", after-before)
	}
}
