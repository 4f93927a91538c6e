package naming

import (
	"errors"
	"testing"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

type countingHolder struct{ holds, unholds int }

func (h *countingHolder) Hold()   { h.holds++ }
func (h *countingHolder) Unhold() { h.unholds++ }

// A watched name's lookup shows each state as a tree, holds the entry
// while subscribed, and releases it once however often it is cancelled;
// its address set does the same.
func TestWatchedLookup(t *testing.T) {
	h := &countingHolder{}
	status := watch.NewVar(NameStatus{})
	addr := watch.NewVar(Addr{State: AddrPending})
	b := &Bound{ID: dtab.Path{"#", "x", "web"}, Addr: WatchedAddr(h, addr)}
	l := WatchedLookup(h, status, b)

	if a := l.Get(); a.State != watch.Pending {
		t.Fatalf("pending name: %v", a.State)
	}
	var got []watch.Activity[dtab.Tree[Name]]
	cancel := l.Subscribe(func(a watch.Activity[dtab.Tree[Name]]) { got = append(got, a) })
	if h.holds != 1 || h.unholds != 0 {
		t.Fatalf("after Subscribe: %d holds, %d unholds", h.holds, h.unholds)
	}
	status.Set(NameStatus{State: NameBound})
	status.Set(NameStatus{State: NameNeg})
	boom := errors.New("boom")
	status.Set(NameStatus{State: NameFailed, Err: boom})
	if len(got) != 4 {
		t.Fatalf("%d values, want 4", len(got))
	}
	if a := got[1]; a.State != watch.Ok || a.Value.Kind != dtab.Leaf || a.Value.Value.Bound != b {
		t.Errorf("bound: %+v", a)
	}
	if a := got[2]; a.State != watch.Ok || a.Value.Kind != dtab.Neg {
		t.Errorf("neg: %+v", a)
	}
	if a := got[3]; a.State != watch.Failed || a.Err != boom {
		t.Errorf("failed: %+v", a)
	}
	cancel()
	cancel()
	if h.unholds != 1 {
		t.Fatalf("%d unholds after two cancels, want 1", h.unholds)
	}
	status.Set(NameStatus{State: NameBound})
	if len(got) != 4 {
		t.Fatal("a value after cancel")
	}

	cancelAddr := b.Addr.Subscribe(func(Addr) {})
	if h.holds != 2 {
		t.Fatalf("address subscription: %d holds, want 2", h.holds)
	}
	cancelAddr()
	cancelAddr()
	if h.unholds != 2 {
		t.Fatalf("%d unholds, want 2", h.unholds)
	}
}
