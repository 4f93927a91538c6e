package remote

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// prefixer is a transformer that marks the id of a one-leaf tree, to
// show Convert applies the transformers.
type prefixer struct{}

func (prefixer) Transform(t naming.BoundTree) naming.BoundTree {
	if t.Kind != dtab.Leaf {
		return t
	}
	b := t.Value
	return dtab.LeafTree(&naming.Bound{ID: append(dtab.Path{"%"}, b.ID...), Residual: b.Residual, Addr: b.Addr})
}

func TestTreesKeepLeavesAcrossAnswersAndForgetTheGoneOnes(t *testing.T) {
	addrs := map[string]int{}
	ts := NewTrees(func(id dtab.Path) watch.Value[naming.Addr] {
		addrs[id.String()]++
		return watch.Const[naming.Addr]{V: naming.Addr{State: naming.AddrNeg}}
	}, nil)
	p := dtab.MustParsePath
	// leaves converts a tree that is the alt of the given (id, residual)
	// leaves, and returns their Bounds.
	leaves := func(fail bool, pairs ...[2]string) []*naming.Bound {
		t.Helper()
		var got []*naming.Bound
		_, err := ts.Convert(func(leaf Leaf) (naming.BoundTree, error) {
			var alts []naming.BoundTree
			for _, x := range pairs {
				b := leaf(p(x[0]), p(x[1]))
				got = append(got, b)
				alts = append(alts, dtab.LeafTree(b))
			}
			if fail {
				return naming.BoundTree{}, errors.New("bad tree")
			}
			return dtab.AltTree(alts...), nil
		})
		if (err != nil) != fail {
			t.Fatalf("Convert: err %v, want failure %v", err, fail)
		}
		return got
	}
	first := leaves(false, [2]string{"/#/a", "/x"}, [2]string{"/#/a", "/y"}, [2]string{"/#/b", "/"})
	if first[0] == first[1] || first[0].Addr == nil || !first[1].Residual.Equal(p("/y")) {
		t.Fatalf("leaves with other residuals must differ: %+v", first)
	}
	again := leaves(false, [2]string{"/#/a", "/x"}, [2]string{"/#/c", "/"})
	if again[0] != first[0] {
		t.Fatal("a leaf sent again got a new Bound (routers would rebuild its clients)")
	}
	// /#/b was not in the last tree: it is forgotten. A failed conversion
	// forgets nothing, so /#/c survives it.
	leaves(true, [2]string{"/#/d", "/"})
	after := leaves(false, [2]string{"/#/b", "/"}, [2]string{"/#/c", "/"})
	if after[0] == first[2] {
		t.Fatal("a leaf absent from the last tree was kept")
	}
	if after[1] != again[1] {
		t.Fatal("a failed conversion forgot a leaf")
	}
	// Asked once per new leaf (the Watches behind addr then share one
	// watch per id), never for a leaf kept.
	if addrs["/#/a"] != 2 || addrs["/#/b"] != 2 || addrs["/#/c"] != 1 || addrs["/#/d"] != 1 {
		t.Fatalf("address watches asked for: %v", addrs)
	}

	tr := NewTrees(func(dtab.Path) watch.Value[naming.Addr] { return nil }, []naming.Transformer{prefixer{}})
	tree, err := tr.Convert(func(leaf Leaf) (naming.BoundTree, error) {
		return dtab.LeafTree(leaf(p("/#/a"), nil)), nil
	})
	if err != nil || tree.Kind != dtab.Leaf || tree.Value.ID.String() != "/%/#/a" {
		t.Fatalf("transformed tree %+v, %v", tree, err)
	}
}

func TestRetryBacksOffResetsOnAnswersAndRecordsTheStatus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws := NewWatches(ctx, 0)
	const base, max = 40 * time.Millisecond, 100 * time.Millisecond
	var pauses []time.Duration
	waiting, returned := make(chan struct{}), make(chan struct{})
	v := ws.Value("k", func(ctx context.Context, v *watch.Var[int]) {
		defer close(returned)
		n := 0
		Retry(ctx, base, max, func(a Attempt) error {
			n++
			switch n {
			case 1, 2, 3:
				return errors.New("namerd down")
			case 4: // answered: made again at once
				a.Answered()
				v.Set(4)
				return nil
			case 5:
				a.Answered()
				return errors.New("stream broke")
			}
			close(waiting)
			<-ctx.Done()
			return ctx.Err()
		}, func(err error, retryIn time.Duration) { pauses = append(pauses, retryIn) })
	})
	stop := v.Subscribe(func(int) {})
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("Retry did not make its sixth try")
	}
	w := ws.Snapshot()[0]
	st := w.Stream
	if st.Requests != 6 || st.Responses != 2 || st.Failures != 4 || st.Error != "stream broke" || st.Streaming {
		t.Fatalf("status %+v", st)
	}
	if w.Value != 4 {
		t.Fatalf("value %d, want 4", w.Value)
	}
	// Jittered within [cur/2, cur], doubling up to max, and from base again
	// after an answer.
	want := [][2]time.Duration{{base / 2, base}, {base, 2 * base}, {max / 2, max}, {base / 2, base}}
	if len(pauses) != len(want) {
		t.Fatalf("pauses %v", pauses)
	}
	for i, p := range pauses {
		if p < want[i][0] || p > want[i][1] {
			t.Fatalf("pause %d = %v, want within %v (all: %v)", i, p, want[i], pauses)
		}
	}
	stop() // the watch ends: the try that fails with it is no failure
	<-returned
	if len(pauses) != 4 {
		t.Fatalf("a try ended by the watch's end was handled as a failure: %v", pauses)
	}
}
