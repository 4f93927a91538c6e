package storage

import (
	"errors"
	"slices"
	"testing"

	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestFeed(t *testing.T) {
	f := NewFeed()
	var got []watch.Activity[Observation]
	cancel := f.Observe("ns").Subscribe(func(a watch.Activity[Observation]) { got = append(got, a) })
	var lists [][]string
	cancelList := f.ObserveList().Subscribe(func(a watch.Activity[[]string]) {
		if a.State == watch.Ok {
			lists = append(lists, a.Value)
		}
	})
	defer cancelList()

	if len(got) != 1 || got[0].State != watch.Pending {
		t.Fatalf("before Reset: %+v", got)
	}
	f.Set("ns", &VersionedDtab{Version: Version("0")}) // before Reset: snapshot only
	if len(got) != 1 {
		t.Fatalf("Set before Reset notified: %+v", got)
	}
	v1 := &VersionedDtab{Version: Version("1")}
	f.Reset(map[string]*VersionedDtab{"ns": v1, "other": {Version: Version("9")}})
	if last := got[len(got)-1]; last.State != watch.Ok || last.Value != v1 {
		t.Fatalf("after Reset: %+v", last)
	}
	n := len(got)
	f.Reset(map[string]*VersionedDtab{"ns": {Version: Version("1")}, "other": {Version: Version("9")}})
	if len(got) != n {
		t.Fatalf("a Reset to the same version notified again: %+v", got[n:])
	}
	boom := errors.New("not a dtab")
	f.SetError("ns", boom)
	if last := got[len(got)-1]; last.State != watch.Failed || !errors.Is(last.Err, boom) {
		t.Fatalf("after SetError: %+v", last)
	}
	if g := f.Observe("ns").Get(); g.State != watch.Failed {
		t.Fatalf("Get after SetError: %+v", g)
	}
	f.Set("ns", nil)
	if last := got[len(got)-1]; last.State != watch.Ok || last.Value != nil {
		t.Fatalf("after delete: %+v", last)
	}
	want := [][]string{{"ns", "other"}, {"other"}}
	if !slices.EqualFunc(lists, want, slices.Equal) {
		t.Fatalf("lists %q, want %q", lists, want)
	}

	cancel()
	f.mu.Lock()
	cells := len(f.cells)
	f.mu.Unlock()
	if cells != 0 {
		t.Fatalf("%d cells left after the last subscriber left", cells)
	}
	f.Fail(boom)
	if a := f.ObserveList().Get(); a.State != watch.Failed {
		t.Fatalf("list after Fail: %+v", a)
	}
}

// A snapshot with an unreadable value makes its namespace fail at once:
// its observers and the namespace list never see it absent in between.
func TestFeedResetWithBad(t *testing.T) {
	f := NewFeed()
	f.Reset(map[string]*VersionedDtab{"ns": {Version: Version("1")}})
	var got []watch.Activity[Observation]
	cancel := f.Observe("ns").Subscribe(func(a watch.Activity[Observation]) { got = append(got, a) })
	defer cancel()
	var lists [][]string
	cancelList := f.ObserveList().Subscribe(func(a watch.Activity[[]string]) { lists = append(lists, a.Value) })
	defer cancelList()
	bad := errors.New("not a dtab")
	f.ResetWith(map[string]*VersionedDtab{"ns": {Version: Version("1")}, "other": {Version: Version("2")}}, map[string]error{"ns": bad})
	for i, a := range got[1:] {
		if a.State == watch.Ok && a.Value == nil {
			t.Errorf("update %d: ns seen absent", i+1)
		}
	}
	if last := got[len(got)-1]; last.State != watch.Failed || !errors.Is(last.Err, bad) {
		t.Errorf("ns is %+v, want Failed with the decode error", last)
	}
	for _, l := range lists {
		if !slices.Contains(l, "ns") {
			t.Errorf("namespace list %v lost ns", l)
		}
	}
	if want := []string{"ns", "other"}; !slices.Equal(lists[len(lists)-1], want) {
		t.Errorf("namespace list %v, want %v", lists[len(lists)-1], want)
	}
}
