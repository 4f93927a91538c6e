package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestBindKeyRoundTrips(t *testing.T) {
	for _, c := range [][2]string{{"", "/svc/a"}, {"/svc=>/#/io.l5d.fs;", "/svc/b"}} {
		d, p := SplitBindKey(BindKey(c[0], c[1]))
		if d != c[0] || p != c[1] {
			t.Errorf("SplitBindKey(BindKey(%q, %q)) = %q, %q", c[0], c[1], d, p)
		}
	}
}

func TestStatusIsNilSafeOutsideAWatch(t *testing.T) {
	st := StatusOf(context.Background())
	if st != nil {
		t.Fatalf("StatusOf(background) = %v, want nil", st)
	}
	st.Request()
	st.Response()
	st.Fail(errors.New("x")) // must not panic
}

// A snapshot lists each running watch with its value, subscribers, update
// count and the stream record its run loop keeps through StatusOf; a
// watch whose last subscriber left disappears from it.
func TestSnapshotRecordsValuesAndStreams(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws := NewWatches(ctx, "pending")
	step := make(chan string)
	run := func(ctx context.Context, v *watch.Var[string]) {
		st := StatusOf(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-step:
				st.Request()
				if s == "fail" {
					st.Fail(errors.New("namerd unreachable"))
				} else {
					st.Response()
					v.Set(s)
				}
				step <- "done"
			}
		}
	}
	do := func(s string) {
		step <- s
		<-step
	}
	before := time.Now()
	c1 := ws.Value("a", run).Subscribe(func(string) {})
	c2 := ws.Value("a", run).Subscribe(func(string) {})
	if snap := ws.Snapshot(); len(snap) != 1 || snap[0].Key != "a" || snap[0].Value != "pending" || snap[0].Subscribers != 2 ||
		snap[0].Updates != 0 || !snap[0].UpdatedAt.IsZero() || snap[0].StartedAt.Before(before) || snap[0].Stream.Requests != 0 {
		t.Fatalf("snapshot before any answer = %+v; want a pending, 2 subscribers, no updates nor requests", snap)
	}

	do("v1")
	do("fail")
	s := ws.Snapshot()[0]
	if s.Value != "v1" || s.Updates != 1 || s.UpdatedAt.Before(s.StartedAt) {
		t.Errorf("after v1 and a failure: value %q, %d updates, updated %v; want v1, 1, after the start", s.Value, s.Updates, s.UpdatedAt)
	}
	if st := s.Stream; st.Streaming || st.Requests != 2 || st.Responses != 1 || st.Failures != 1 || st.Error != "namerd unreachable" ||
		st.LastRequestAt == nil || st.LastResponseAt == nil || st.LastFailureAt == nil || st.LastFailureAt.Before(*st.LastResponseAt) {
		t.Errorf("stream after an answer then a failure = %+v; want not streaming, 2 requests, 1 response, 1 failure with its error", st)
	}
	do("v2")
	s = ws.Snapshot()[0]
	if st := s.Stream; !st.Streaming || st.Error != "" || st.Responses != 2 || s.Value != "v2" || s.Updates != 2 {
		t.Errorf("after recovering: %+v; want streaming, error cleared, value v2, 2 updates", s)
	}

	c1()
	if s := ws.Snapshot(); len(s) != 1 || s[0].Subscribers != 1 {
		t.Errorf("after one subscriber left: %+v; want a with 1 subscriber", s)
	}
	c2()
	if s := ws.Snapshot(); len(s) != 0 {
		t.Errorf("after the last subscriber left: %+v; want no watches", s)
	}
}

// StateDoc is Linkerd's shape: bind by path then dtab, addresses by id,
// each with a "state" VarState and the stream record under streamKey.
func TestStateDocShape(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bind := NewWatches(ctx, watch.PendingActivity[naming.BoundTree]())
	addr := NewWatches(ctx, naming.Addr{State: naming.AddrPending})
	id := dtab.Path{"$", "inet", "127.0.0.1", "8080"}
	av := addr.Value(id.String(), func(ctx context.Context, v *watch.Var[naming.Addr]) {
		StatusOf(ctx).Request()
		StatusOf(ctx).Response()
		v.Set(naming.Addr{State: naming.AddrBound, Addrs: []naming.Address{{Host: "127.0.0.1", Port: 8080, Weight: 1}}})
	})
	tree := dtab.AltTree(dtab.LeafTree(&naming.Bound{ID: id, Residual: dtab.Path{"x"}, Addr: av}), dtab.NegTree[*naming.Bound]())
	bv := bind.Value(BindKey("/svc=>/$/inet;", "/svc/world"), func(ctx context.Context, v *watch.Var[watch.Activity[naming.BoundTree]]) {
		v.Set(watch.OkActivity(tree))
	})
	failed := bind.Value(BindKey("", "/svc/gone"), func(ctx context.Context, v *watch.Var[watch.Activity[naming.BoundTree]]) {
		StatusOf(ctx).Fail(errors.New("dtab not found"))
		v.Set(watch.FailedActivity[naming.BoundTree](errors.New("namerd: dtab not found")))
	})
	defer bv.Subscribe(func(watch.Activity[naming.BoundTree]) {})()
	defer failed.Subscribe(func(watch.Activity[naming.BoundTree]) {})()
	defer av.Subscribe(func(naming.Addr) {})()
	if !waitFor(func() bool {
		return bv.Get().State == watch.Ok && failed.Get().State == watch.Failed && av.Get().State == naming.AddrBound
	}) {
		t.Fatal("watches did not settle")
	}

	b, err := json.Marshal(StateDoc(bind, addr, "resolve", "watch"))
	if err != nil {
		t.Fatal(err)
	}
	type varState struct {
		Running     bool            `json:"running"`
		Started     *time.Time      `json:"lastStartedAt"`
		Updated     *time.Time      `json:"lastUpdatedAt"`
		Subscribers int             `json:"subscribers"`
		Value       json.RawMessage `json:"value"`
	}
	type entry struct {
		State varState    `json:"state"`
		Watch StreamState `json:"watch"`
	}
	var doc struct {
		Bind    map[string]map[string]entry `json:"bind"`
		Resolve map[string]entry            `json:"resolve"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	w := doc.Bind["/svc/world"]["/svc=>/$/inet;"]
	var bvv BindValue
	_ = json.Unmarshal(w.State.Value, &bvv)
	if !w.State.Running || w.State.Started == nil || w.State.Updated == nil || w.State.Subscribers != 1 ||
		bvv.State != "ok" || bvv.Tree != "/$/inet/127.0.0.1/8080/x | ~" ||
		fmt.Sprint(bvv.Leaves) != "[{/$/inet/127.0.0.1/8080 /x}]" {
		t.Errorf("bind /svc/world = %+v, value %+v; want running, ok, tree /$/inet/127.0.0.1/8080/x | ~; doc %s", w.State, bvv, b)
	}
	g := doc.Bind["/svc/gone"][""]
	var gv BindValue
	_ = json.Unmarshal(g.State.Value, &gv)
	if gv.State != "failed" || gv.Error != "namerd: dtab not found" || g.Watch.Error != "dtab not found" || g.Watch.Failures != 1 {
		t.Errorf("bind /svc/gone = %+v, value %+v; want failed with both errors; doc %s", g, gv, b)
	}
	r := doc.Resolve[id.String()]
	var rv AddrValue
	_ = json.Unmarshal(r.State.Value, &rv)
	if rv.State != "bound" || fmt.Sprint(rv.Addresses) != "[127.0.0.1:8080]" || !r.Watch.Streaming || r.Watch.Responses != 1 {
		t.Errorf("resolve %s = %+v, value %+v; want bound [127.0.0.1:8080], streaming; doc %s", id, r, rv, b)
	}
}
