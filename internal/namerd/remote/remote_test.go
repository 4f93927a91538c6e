package remote

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestWatchesShareOneRunPerKey(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws := NewWatches(ctx, "pending")
	var runs atomic.Int32
	stopped := make(chan string, 4)
	run := func(key string) func(context.Context, *watch.Var[string]) {
		return func(ctx context.Context, v *watch.Var[string]) {
			runs.Add(1)
			v.Set(key + "-ok")
			<-ctx.Done()
			stopped <- key
		}
	}
	a1, a2, b := ws.Value("a", run("a")), ws.Value("a", run("a")), ws.Value("b", run("b"))
	if got := a1.Get(); got != "pending" {
		t.Fatalf("Get before any subscriber = %q, want pending", got)
	}
	seen := make(chan string, 16)
	c1 := a1.Subscribe(func(s string) { seen <- s })
	c2 := a2.Subscribe(func(s string) { seen <- s })
	c3 := b.Subscribe(func(string) {})
	if !waitFor(func() bool { return a2.Get() == "a-ok" && b.Get() == "b-ok" }) {
		t.Fatalf("values = %q, %q; want a-ok, b-ok", a2.Get(), b.Get())
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d runs for two keys, want 2 (one per key)", n)
	}
	if n := ws.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}

	c1()
	c1() // idempotent: must not release a2's reference
	select {
	case k := <-stopped:
		t.Fatalf("watch %q stopped while a subscriber remains", k)
	case <-time.After(50 * time.Millisecond):
	}
	c2()
	if k := <-stopped; k != "a" {
		t.Fatalf("stopped %q, want a", k)
	}
	if got := a1.Get(); got != "pending" {
		t.Fatalf("Get after the last subscriber left = %q, want pending", got)
	}
	if n := ws.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
	cancel() // the set's context ends every watch
	if k := <-stopped; k != "b" {
		t.Fatalf("stopped %q, want b", k)
	}
	c3()
	if n := ws.Len(); n != 0 {
		t.Fatalf("Len = %d after every subscriber left, want 0", n)
	}
}

func TestBackoffJittersDoublesAndResets(t *testing.T) {
	b := &Backoff{Base: 100 * time.Millisecond, Max: 350 * time.Millisecond}
	for i, ceil := range []time.Duration{100, 200, 350, 350} {
		ceil *= time.Millisecond
		if d := b.Next(); d < ceil/2 || d > ceil {
			t.Fatalf("pause %d = %v, want within [%v, %v]", i, d, ceil/2, ceil)
		}
	}
	b.Reset()
	if d := b.Next(); d < 50*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("pause after Reset = %v, want within [50ms, 100ms]", d)
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Wait(ctx, time.Hour) {
		t.Fatal("Wait returned true on an ended context")
	}
	if time.Since(start) > time.Second {
		t.Fatal("Wait did not return at once on an ended context")
	}
	if !Wait(context.Background(), time.Millisecond) {
		t.Fatal("Wait returned false although the pause elapsed")
	}
}

func TestDialerDialsTheBoundAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	addr := watch.NewVar(naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{{Host: "127.0.0.1", Port: port, Weight: 1}}})
	id := dtab.Path{"$", "inet", "127.0.0.1", strconv.Itoa(port)}
	binding := watch.NewVar(watch.PendingActivity[naming.BoundTree]())
	life, stop := context.WithCancel(context.Background())
	defer stop()
	dial := Dialer(life, binding)

	if _, err := dial(context.Background()); err == nil || !strings.Contains(err.Error(), "not known yet") {
		t.Fatalf("dial while the binding is pending: %v, want a 'not known yet' error", err)
	}
	binding.Set(watch.OkActivity(dtab.LeafTree(&naming.Bound{ID: id, Addr: addr})))
	if n := addr.Subscribers(); n != 1 {
		t.Fatalf("the leaf's address set has %d subscribers, want 1 (watched ahead of the first dial)", n)
	}
	c, err := dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-accepted

	addr.Set(naming.Addr{State: naming.AddrNeg})
	if _, err := dial(context.Background()); err == nil || !strings.Contains(err.Error(), "no namerd address") {
		t.Fatalf("dial with no address: %v, want a 'no namerd address' error", err)
	}
	binding.Set(watch.OkActivity(dtab.LeafTree(&naming.Bound{ID: id})))
	if _, err := dial(context.Background()); err == nil || !strings.Contains(err.Error(), "no namerd address") {
		t.Fatalf("dial to a leaf without an address set: %v, want a 'no namerd address' error", err)
	}

	stop()
	if !waitFor(func() bool { return binding.Subscribers() == 0 && addr.Subscribers() == 0 }) {
		t.Fatalf("after life ended: %d binding and %d address subscribers left, want 0", binding.Subscribers(), addr.Subscribers())
	}
}

func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
