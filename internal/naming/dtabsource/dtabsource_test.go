package dtabsource

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// recorder collects a binding's values.
type recorder struct {
	mu   sync.Mutex
	seen []watch.Activity[naming.BoundTree]
}

func (r *recorder) add(a watch.Activity[naming.BoundTree]) {
	r.mu.Lock()
	r.seen = append(r.seen, a)
	r.mu.Unlock()
}

func (r *recorder) last() watch.Activity[naming.BoundTree] {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		return watch.Activity[naming.BoundTree]{State: 255}
	}
	return r.seen[len(r.seen)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// leafID is the bound id of a one-leaf tree, or "" otherwise.
func leafID(a watch.Activity[naming.BoundTree]) string {
	if a.State != watch.Ok || a.Value.Kind != dtab.Leaf || a.Value.Value == nil {
		return ""
	}
	return a.Value.Value.ID.String()
}

func waitID(t *testing.T, r *recorder, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if leafID(r.last()) == want {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("binding never became %s; last %+v", want, r.last())
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTest(t *testing.T) (*Live, *Interpreter, *logBuf) {
	t.Helper()
	var lb logBuf
	live := NewLive("test source", slog.New(slog.NewTextHandler(&lb, nil)))
	return live, New(live, naming.NewInterpreter(nil), "io.test", "t"), &lb
}

func TestLiveDtabRebinds(t *testing.T) {
	live, in, logs := newTest(t)
	var r recorder
	cancel := in.Bind(dtab.MustParse("/svc=>/x"), dtab.MustParsePath("/svc/a")).Subscribe(r.add)
	defer cancel()

	if got := r.last(); got.State != watch.Pending {
		t.Fatalf("before the first dtab: %v, want pending", got.State)
	}
	if err := live.SetText("/x/a => /$/inet/127.0.0.1/1001"); err != nil {
		t.Fatal(err)
	}
	waitID(t, &r, "/$/inet/127.0.0.1/1001")

	if err := live.SetText("/x/a => /$/inet/127.0.0.1/1002"); err != nil {
		t.Fatal(err)
	}
	waitID(t, &r, "/$/inet/127.0.0.1/1002")

	// Bad text: logged, the last good dtab stays.
	n := r.count()
	err := live.SetText("/x/a => => nonsense")
	if err == nil || !strings.Contains(err.Error(), "test source") {
		t.Fatalf("SetText(bad) = %v, want an error naming the source", err)
	}
	if !strings.Contains(logs.String(), "keeping the last good dtab") {
		t.Fatalf("parse error not logged: %q", logs.String())
	}
	if r.count() != n || leafID(r.last()) != "/$/inet/127.0.0.1/1002" {
		t.Fatalf("bad dtab changed the binding: %+v", r.last())
	}
	st := in.State().(State)
	if st.State != "ok" || st.Error == "" || st.Dtab == nil || !strings.Contains(*st.Dtab, "1002") {
		t.Fatalf("state %+v", st)
	}

	// The same content again does not re-bind.
	if err := live.SetText("  /x/a=>/$/inet/127.0.0.1/1002 ;"); err != nil {
		t.Fatal(err)
	}
	if r.count() != n {
		t.Fatalf("an unchanged dtab re-bound (%d → %d values)", n, r.count())
	}

	// The router's dtab comes after the live one, so it wins.
	var r2 recorder
	c2 := in.Bind(dtab.MustParse("/svc=>/x;/x/a=>/$/inet/127.0.0.1/2000"), dtab.MustParsePath("/svc/a")).Subscribe(r2.add)
	waitID(t, &r2, "/$/inet/127.0.0.1/2000")
	c2()

	cancel()
	n = r.count()
	_ = live.SetText("/x/a => /$/inet/127.0.0.1/1003")
	if r.count() != n {
		t.Fatal("a cancelled subscription was called")
	}
	if got := live.v.Subscribers(); got != 0 {
		t.Fatalf("%d subscriptions to the live dtab left after cancel", got)
	}
}

func TestFirstValueBadFails(t *testing.T) {
	live, in, _ := newTest(t)
	b := in.Bind(nil, dtab.MustParsePath("/svc/a"))
	var r recorder
	defer b.Subscribe(r.add)()
	_ = live.SetText("/svc => ")
	got := r.last()
	if got.State != watch.Failed || !strings.Contains(got.Err.Error(), "invalid dtab") {
		t.Fatalf("first value bad: %+v, want failed with the parse error", got)
	}
	if g := b.Get(); g.State != watch.Failed {
		t.Fatalf("Get = %v", g.State)
	}
	if _, err := in.Explain(context.Background(), nil, dtab.MustParsePath("/svc/a")); err == nil {
		t.Fatal("Explain without a dtab succeeded")
	}
	_ = live.SetText("/svc => /$/inet/127.0.0.1/7")
	waitID(t, &r, "/$/inet/127.0.0.1/7")
	if g := b.Get(); leafID(g) != "/$/inet/127.0.0.1/7" {
		t.Fatalf("Get = %+v", g)
	}
}

func TestExplainUsesLiveDtab(t *testing.T) {
	live, in, _ := newTest(t)
	if _, err := in.Explain(context.Background(), nil, dtab.MustParsePath("/svc/a")); !errors.Is(err, ErrNoDtab) {
		t.Fatalf("Explain before a dtab: %v", err)
	}
	_ = live.SetText("/svc => /$/inet/127.0.0.1/9")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := naming.Delegate(ctx, in, nil, dtab.MustParsePath("/svc/a"))
	if err != nil {
		t.Fatal(err)
	}
	if js := string(naming.MarshalDelegateJSON(n)); !strings.Contains(js, "/$/inet/127.0.0.1/9") {
		t.Fatalf("explanation ignores the live dtab: %s", js)
	}
}

// TestConcurrentChanges races dtab changes against subscribe/cancel.
func TestConcurrentChanges(t *testing.T) {
	live, in, _ := newTest(t)
	_ = live.SetText("/svc => /$/inet/127.0.0.1/1")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = live.SetText("/svc => /$/inet/127.0.0.1/" + string(rune('1'+i%9)))
		}
	}()
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				var r recorder
				c := in.Bind(nil, dtab.MustParsePath("/svc/a")).Subscribe(r.add)
				c()
				n := r.count()
				time.Sleep(10 * time.Microsecond)
				if r.count() != n {
					t.Error("called after cancel returned")
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if got := live.v.Subscribers(); got != 0 {
		t.Fatalf("%d subscriptions left", got)
	}
}

// slowNamer answers every lookup from one Var, pending until set.
type slowNamer struct {
	v *watch.Var[watch.Activity[dtab.Tree[naming.Name]]]
}

func (n slowNamer) Lookup(dtab.Path) naming.Lookup { return n.v }

// TestSwitchWaitsForTheNewAnswer: a dtab change to a name whose namer has
// not answered yet keeps the old binding serving (no pending value reaches
// the subscriber) until the new one answers; then the old one is dropped.
func TestSwitchWaitsForTheNewAnswer(t *testing.T) {
	slow := slowNamer{v: watch.NewVar(watch.PendingActivity[dtab.Tree[naming.Name]]())}
	live := NewLive("test source", nil)
	in := New(live, naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "slow"}, Namer: slow}}), "io.test", "t")
	_ = live.SetText("/svc => /$/inet/127.0.0.1/1")
	var r recorder
	defer in.Bind(nil, dtab.MustParsePath("/svc/a")).Subscribe(r.add)()
	waitID(t, &r, "/$/inet/127.0.0.1/1")

	_ = live.SetText("/svc => /#/slow")
	if !linnetWait(func() bool { return slow.v.Subscribers() > 0 }) {
		t.Fatal("the new dtab's namer was never asked")
	}
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	for _, a := range r.seen {
		if a.State != watch.Ok {
			r.mu.Unlock()
			t.Fatalf("a %v value reached the subscriber during the switch: %+v", a.State, r.seen)
		}
	}
	r.mu.Unlock()
	if got := leafID(r.last()); got != "/$/inet/127.0.0.1/1" {
		t.Fatalf("during the switch the binding is %q, want the old one", got)
	}

	// A second change while the first is still waiting: the old binding
	// still serves, the waiting one is dropped.
	_ = live.SetText("/svc => /#/slow;/svc/b => /$/nil")
	slow.v.Set(watch.OkActivity(dtab.Tree[naming.Name]{Kind: dtab.Leaf, Value: naming.Name{Bound: &naming.Bound{
		ID: dtab.MustParsePath("/#/slow/a"), Addr: watch.Const[naming.Addr]{V: naming.Addr{State: naming.AddrBound}},
	}}}))
	waitID(t, &r, "/#/slow/a")
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.seen {
		if a.State != watch.Ok {
			t.Fatalf("non-ok value delivered: %+v", r.seen)
		}
	}
}

func linnetWait(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}
