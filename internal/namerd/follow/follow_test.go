package follow

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage/memory"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Binding emits the binding through the namespace's dtab and the extra
// dtab, binds again when the dtab changes, stops with emit's error, and
// returns nil when ctx ends.
func TestBinding(t *testing.T) {
	namer := naming.NewStaticNamer(dtab.Path{"#", "t"}, map[string][]naming.Address{
		"v1": {{Host: "127.0.0.1", Port: 1}}, "v2": {{Host: "127.0.0.1", Port: 2}},
	})
	interp := naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "t"}, Namer: namer}})
	store := memory.New(map[string]dtab.Dtab{"ns": dtab.MustParse("/svc/web=>/#/t/v1")})
	ids := make(chan string, 8)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := errors.New("stop")
	go func() {
		done <- Binding(ctx, store, interp, "ns", dtab.MustParse("/x=>/y"), dtab.MustParsePath("/svc/web"), func(a watch.Activity[naming.BoundTree]) error {
			if a.State != watch.Ok || a.Value.Kind != dtab.Leaf {
				t.Errorf("emitted %+v", a)
				return stop
			}
			ids <- a.Value.Value.ID.String()
			return nil
		})
	}()
	next := func() string {
		select {
		case id := <-ids:
			return id
		case <-time.After(5 * time.Second):
			t.Fatal("no binding emitted")
			return ""
		}
	}
	if id := next(); id != "/#/t/v1" {
		t.Fatalf("first binding %s", id)
	}
	if err := store.Put(ctx, "ns", dtab.MustParse("/svc/web=>/#/t/v2")); err != nil {
		t.Fatal(err)
	}
	if id := next(); id != "/#/t/v2" {
		t.Fatalf("after the dtab changed: %s", id)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Binding returned %v after ctx ended, want nil", err)
	}

	// An emit error ends it with that error.
	err := Binding(context.Background(), store, interp, "ns", nil, dtab.MustParsePath("/svc/web"), func(watch.Activity[naming.BoundTree]) error { return stop })
	if err != stop {
		t.Errorf("Binding returned %v, want emit's error", err)
	}
}

// Addresses follows the address set of the leaf an id binds to, and
// settles the addresses itself when the id does not bind to one leaf.
func TestAddresses(t *testing.T) {
	namer := naming.NewStaticNamer(dtab.Path{"#", "t"}, map[string][]naming.Address{"v1": {{Host: "127.0.0.1", Port: 1}}})
	interp := naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "t"}, Namer: namer}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan naming.Addr, 8)
	done := make(chan error, 1)
	go func() {
		done <- Addresses(ctx, interp, dtab.MustParsePath("/#/t/v1"), func(a naming.Addr) error { got <- a; return nil })
	}()
	next := func() naming.Addr {
		t.Helper()
		select {
		case a := <-got:
			return a
		case <-time.After(5 * time.Second):
			t.Fatal("no addresses emitted")
			return naming.Addr{}
		}
	}
	if a := next(); a.State != naming.AddrBound || len(a.Addrs) != 1 || a.Addrs[0].HostPort() != "127.0.0.1:1" {
		t.Fatalf("first addresses %+v", a)
	}
	namer.Set("v1", naming.Address{Host: "127.0.0.1", Port: 2})
	if a := next(); a.State != naming.AddrBound || len(a.Addrs) != 1 || a.Addrs[0].HostPort() != "127.0.0.1:2" {
		t.Fatalf("after the namer changed: %+v", a)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Addresses returned %v after ctx ended, want nil", err)
	}

	// Ids that bind to no single leaf settle at once; emit's error ends
	// the watch with that error.
	stop := errors.New("stop")
	for _, c := range []struct{ id, want string }{
		{"/$/fail", "failed name tree failed"},
		{"/$/nil", "bound 0"},
		{"/#/nope/x", "neg 0"},
	} {
		var a naming.Addr
		err := Addresses(context.Background(), interp, dtab.MustParsePath(c.id), func(x naming.Addr) error { a = x; return stop })
		s := map[naming.AddrState]string{naming.AddrBound: "bound", naming.AddrNeg: "neg", naming.AddrFailed: "failed"}[a.State]
		if a.Err != nil {
			s += " " + a.Err.Error()
		} else {
			s += fmt.Sprintf(" %d", len(a.Addrs))
		}
		if err != stop || s != c.want {
			t.Errorf("Addresses(%s): %q, %v; want %q and emit's error", c.id, s, err, c.want)
		}
	}
}
