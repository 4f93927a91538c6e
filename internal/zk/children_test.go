package zk_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/linnet-mesh/linnet/internal/zk"
	"github.com/linnet-mesh/linnet/internal/zk/zktest"
)

// childRecorder runs a ChildrenWatch of ints over path and records each
// callback as one line: "publish a=1 b=2", "publish absent",
// "leftout bad: ...", "fail: ...", "reconnected".
type childRecorder struct {
	t      *testing.T
	events chan string
}

func watchChildren(t *testing.T, c *zk.Client, path string) *childRecorder {
	r := &childRecorder{t: t, events: make(chan string, 1024)}
	w := &zk.ChildrenWatch[int]{
		Client: c,
		Path:   path,
		Accept: func(name string) bool { return !strings.HasPrefix(name, "skip") },
		Parse: func(_ context.Context, _ string, data []byte) (int, error) {
			n, err := strconv.Atoi(string(data))
			if err != nil {
				return 0, errors.New("not a number")
			}
			return n, nil
		},
		Publish: func(children map[string]int) {
			if children == nil {
				r.events <- "publish absent"
				return
			}
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(children)) {
				parts = append(parts, fmt.Sprintf("%s=%d", k, children[k]))
			}
			r.events <- strings.TrimSpace("publish " + strings.Join(parts, " "))
		},
		LeftOut:     func(name string, err error) { r.events <- "leftout " + name + ": " + err.Error() },
		Fail:        func(err error) { r.events <- "fail: " + err.Error() },
		Reconnected: func() { r.events <- "reconnected" },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of its context ending")
		}
	})
	return r
}

// await reads events until one starts with want, and returns it and the
// events read before it.
func (r *childRecorder) await(want string) (got string, before []string) {
	r.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev := <-r.events:
			if strings.HasPrefix(ev, want) {
				return ev, before
			}
			before = append(before, ev)
		case <-timeout:
			r.t.Fatalf("no event %q within 15s; saw %q", want, before)
		}
	}
}

// A ChildrenWatch publishes the usable children of a znode as they and
// their data change, nil while the znode is missing, and leaves out the
// children Accept refuses or whose data does not parse.
func TestChildrenWatch(t *testing.T) {
	srv := zktest.Start(t)
	c := srv.Client(t)
	ctx := ctxT(t, 40*time.Second)
	acl := gozk.WorldACL(gozk.PermAll)
	r := watchChildren(t, srv.Client(t), "/set")

	r.await("publish absent")
	if _, err := c.Create(ctx, "/set", nil, 0, acl); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.await("publish"); got != "publish" {
		t.Fatalf("after creating the znode: %q", got)
	}
	for _, kv := range [][2]string{{"a", "1"}, {"skip-me", "7"}, {"bad", "x"}} {
		if _, err := c.Create(ctx, "/set/"+kv[0], []byte(kv[1]), 0, acl); err != nil {
			t.Fatal(err)
		}
	}
	_, before := r.await("leftout bad: not a number")
	got, more := r.await("publish")
	if got != "publish a=1" {
		t.Fatalf("after creating the children: %q", got)
	}
	for _, ev := range append(before, more...) {
		if strings.Contains(ev, "skip") {
			t.Errorf("refused child seen: %q", ev)
		}
	}

	// Data changes are followed, the unusable child included.
	if _, err := c.Set(ctx, "/set/a", []byte("2"), -1); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.await("publish a="); got != "publish a=2" {
		t.Fatalf("after a=2: %q", got)
	}
	if _, err := c.Set(ctx, "/set/bad", []byte("3"), -1); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.await("publish"); got != "publish a=2 bad=3" {
		t.Fatalf("after bad=3: %q", got)
	}
	if _, err := c.Set(ctx, "/set/bad", []byte("y"), -1); err != nil {
		t.Fatal(err)
	}
	r.await("leftout bad: not a number")
	if got, _ := r.await("publish"); got != "publish a=2" {
		t.Fatalf("after bad=y: %q", got)
	}

	// A child going is followed; the znode going is absent.
	if err := c.Delete(ctx, "/set/a", -1); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.await("publish"); got != "publish" {
		t.Fatalf("after deleting a: %q", got)
	}
	for _, name := range []string{"bad", "skip-me"} {
		if err := c.Delete(ctx, "/set/"+name, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(ctx, "/set", -1); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.await("publish absent"); got != "publish absent" {
		t.Fatal(got)
	}
}

// While ZooKeeper is down the watch reports failures naming the servers
// (and publishes nothing); when it is back the watch follows changes
// again.
func TestChildrenWatchOutage(t *testing.T) {
	srv := zktest.Start(t)
	c := srv.Client(t)
	ctx := ctxT(t, 40*time.Second)
	acl := gozk.WorldACL(gozk.PermAll)
	if err := c.CreateAll(ctx, "/set", acl); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, "/set/a", []byte("1"), 0, acl); err != nil {
		t.Fatal(err)
	}
	r := watchChildren(t, srv.Client(t), "/set")
	r.await("publish a=1")

	srv.Stop()
	got, before := r.await("fail: ")
	if !strings.Contains(got, "zookeeper 127.0.0.1:") {
		t.Errorf("failure does not name the servers: %q", got)
	}
	if len(before) != 0 {
		t.Errorf("events before the failure: %q", before)
	}
	time.Sleep(300 * time.Millisecond)
	for len(r.events) > 0 {
		if ev := <-r.events; strings.HasPrefix(ev, "publish") {
			t.Errorf("published while down: %q", ev)
		}
	}
	srv.Restart()
	// Whether the session survived (the same watches) or expired (a new
	// pass, which publishes a=1 again), the next change is followed.
	if _, err := c.Set(ctxT(t, 20*time.Second), "/set/a", []byte("5"), -1); err != nil {
		t.Fatal(err)
	}
	_, before = r.await("publish a=5")
	for _, ev := range before {
		if strings.HasPrefix(ev, "publish") && ev != "publish a=1" {
			t.Errorf("unexpected answer across the outage: %q", ev)
		}
	}
}
