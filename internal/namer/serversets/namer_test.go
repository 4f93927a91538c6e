package serversets

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
	"github.com/linnet-mesh/linnet/internal/zk"
	"github.com/linnet-mesh/linnet/internal/zk/zktest"
)

const wait = 20 * time.Second

var roots atomic.Int64

// freshRoot returns a znode path no other test uses.
func freshRoot() string { return fmt.Sprintf("/linnet-ss-%d", roots.Add(1)) }

func newNamer(t *testing.T, srv *zktest.Server, kind string) *Namer {
	t.Helper()
	n, err := New(naming.Env{Ctx: t.Context(), Scope: telemetry.NewRegistry().Scope().Scope("namer", kind)}, Options{
		Kind:           kind,
		Servers:        []string{srv.Addr()},
		SessionTimeout: 10 * time.Second,
		RequestTimeout: 3 * time.Second,
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			if host == "web-1.test" {
				return []netip.Addr{netip.MustParseAddr("127.0.0.9")}, nil
			}
			return nil, fmt.Errorf("no such host %s", host)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func member(host string, port int, status string, extra ...string) []byte {
	add := ""
	if len(extra) > 0 {
		var parts []string
		for i := 0; i+2 < len(extra)+1; i += 3 {
			parts = append(parts, fmt.Sprintf("%q:{\"host\":%q,\"port\":%s}", extra[i], extra[i+1], extra[i+2]))
		}
		add = `,"additionalEndpoints":{` + strings.Join(parts, ",") + `}`
	}
	return fmt.Appendf(nil, `{"serviceEndpoint":{"host":%q,"port":%d}%s,"status":%q}`, host, port, add, status)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// join registers a member the way a Finagle server does: an ephemeral,
// sequential member_ node under the serverset, owned by cli's session.
func join(t *testing.T, cli *zk.Client, set string, data []byte) string {
	t.Helper()
	ctx := ctxT(t)
	if err := cli.CreateAll(ctx, set, gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	p, err := cli.Create(ctx, set+"/"+MemberPrefix, data, gozk.FlagEphemeral|gozk.FlagSequence, gozk.WorldACL(gozk.PermAll))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// treeObserver follows a lookup.
type treeObserver struct {
	ch     chan watch.Activity[dtab.Tree[naming.Name]]
	cancel func()
}

func observeTree(t *testing.T, l naming.Lookup) *treeObserver {
	o := &treeObserver{ch: make(chan watch.Activity[dtab.Tree[naming.Name]], 256)}
	o.cancel = l.Subscribe(func(a watch.Activity[dtab.Tree[naming.Name]]) {
		select {
		case o.ch <- a:
		default:
		}
	})
	t.Cleanup(o.cancel)
	return o
}

func (o *treeObserver) await(t *testing.T, what string, ok func(watch.Activity[dtab.Tree[naming.Name]]) bool) watch.Activity[dtab.Tree[naming.Name]] {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case a := <-o.ch:
			if ok(a) {
				return a
			}
		case <-timer.C:
			t.Fatalf("%s: not observed within %v", what, wait)
		}
	}
}

func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// stateOf returns the state page entry of one znode, as text.
func stateOf(n *Namer, znode string) string {
	b, _ := json.Marshal(n.State().(map[string]any)["znodes"])
	var m map[string]map[string]any
	_ = json.Unmarshal(b, &m)
	e := m[znode]
	delete(e, "error")
	if m, ok := e["members"].(float64); ok {
		e["members"] = int(m)
	}
	return fmt.Sprint(e)
}

func isNeg(a watch.Activity[dtab.Tree[naming.Name]]) bool {
	return a.State == watch.Ok && a.Value.Kind == dtab.Neg
}

func boundTo(id, residual string) func(watch.Activity[dtab.Tree[naming.Name]]) bool {
	return func(a watch.Activity[dtab.Tree[naming.Name]]) bool {
		return a.State == watch.Ok && a.Value.Kind == dtab.Leaf && a.Value.Value.Bound != nil &&
			a.Value.Value.Bound.ID.String() == id && a.Value.Value.Bound.Residual.String() == residual
	}
}

// addrObserver follows an address set.
type addrObserver struct{ ch chan naming.Addr }

func observeAddr(t *testing.T, v watch.Value[naming.Addr]) *addrObserver {
	o := &addrObserver{ch: make(chan naming.Addr, 256)}
	cancel := v.Subscribe(func(a naming.Addr) {
		select {
		case o.ch <- a:
		default:
		}
	})
	t.Cleanup(cancel)
	return o
}

func hostPorts(a naming.Addr) []string {
	var out []string
	for _, x := range a.Addrs {
		out = append(out, x.HostPort())
	}
	return out
}

func (o *addrObserver) await(t *testing.T, what string, want ...string) {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var last naming.Addr
	for {
		select {
		case a := <-o.ch:
			last = a
			if a.State == naming.AddrBound && slices.Equal(hostPorts(a), want) {
				return
			}
		case <-timer.C:
			t.Fatalf("%s: want bound %v, last %+v", what, want, last)
		}
	}
}

// A serverset's live members are the address set: members joining,
// leaving (their session ends, their ephemeral nodes go) and turning not
// ALIVE are followed; host names are resolved; unusable member data is
// left out.
func TestServersetFollowsMembers(t *testing.T) {
	srv := zktest.Start(t)
	root := freshRoot()
	set := root + "/prod/web"
	admin := srv.Client(t)
	join(t, admin, set, member("127.0.0.1", 8080, "ALIVE"))
	n := newNamer(t, srv, Kind)

	path := dtab.Path{root[1:], "prod", "web", "rest"}
	o := observeTree(t, n.Lookup(path))
	a := o.await(t, "bound", boundTo("/#/io.l5d.serversets"+root+"/prod/web", "/rest"))
	addrs := observeAddr(t, a.Value.Value.Bound.Addr)
	addrs.await(t, "first member", "127.0.0.1:8080")

	server2 := srv.Client(t)
	join(t, server2, set, member("web-1.test", 8081, "ALIVE"))
	addrs.await(t, "second member (resolved host name)", "127.0.0.1:8080", "127.0.0.9:8081")

	p3 := join(t, admin, set, member("127.0.0.3", 8082, "STARTING"))
	join(t, admin, set, []byte(`{"serviceEndpoint":{"host":"127.0.0.4"}}`)) // no port: left out
	join(t, admin, set, member("127.0.0.5", 8083, "ALIVE"))
	addrs.await(t, "a STARTING member and a broken one are left out", "127.0.0.1:8080", "127.0.0.5:8083", "127.0.0.9:8081")
	if _, err := admin.Set(ctxT(t), p3, member("127.0.0.3", 8082, "ALIVE"), -1); err != nil {
		t.Fatal(err)
	}
	addrs.await(t, "member turned ALIVE", "127.0.0.1:8080", "127.0.0.3:8082", "127.0.0.5:8083", "127.0.0.9:8081")

	server2.Close() // its session ends: its ephemeral member goes
	addrs.await(t, "member whose session ended", "127.0.0.1:8080", "127.0.0.3:8082", "127.0.0.5:8083")
}

// name:endpoint as the last element selects an additional endpoint.
func TestServersetEndpoint(t *testing.T) {
	srv := zktest.Start(t)
	root := freshRoot()
	admin := srv.Client(t)
	join(t, admin, root+"/web", member("127.0.0.1", 8080, "ALIVE", "admin", "127.0.0.1", "9990", "http", "127.0.0.2", "80"))
	join(t, admin, root+"/web", member("127.0.0.3", 8080, "ALIVE"))
	n := newNamer(t, srv, Kind)
	o := observeTree(t, n.Lookup(dtab.Path{root[1:], "web:admin"}))
	a := o.await(t, "bound", boundTo("/#/io.l5d.serversets"+root+"/web:admin", "/"))
	observeAddr(t, a.Value.Value.Bound.Addr).await(t, "admin endpoint (only the member that has one)", "127.0.0.1:9990")
}

// A path that does not exist is negative, and so is a serverset without
// a live member (Finagle's zk2 resolver); the lookup binds the longest
// prefix that has live members, and follows members coming and going.
func TestServersetNegThenCreated(t *testing.T) {
	srv := zktest.Start(t)
	root := freshRoot()
	n := newNamer(t, srv, Kind)
	o := observeTree(t, n.Lookup(dtab.Path{root[1:], "svc", "x"}))
	o.await(t, "negative", isNeg)
	admin := srv.Client(t)
	join(t, admin, root+"/svc", member("127.0.0.1", 999, "STARTING"))
	// Wait until the namer has read the member (the state page counts it).
	want := fmt.Sprint(map[string]any{"state": "bound", "members": 1})
	if !waitFor(func() bool { return strings.Contains(stateOf(n, root+"/svc"), want) }) {
		t.Fatalf("namer state: %s", stateOf(n, root+"/svc"))
	}
	// A fresh lookup shares the watched znodes: its Get is their state.
	if a := n.Lookup(dtab.Path{root[1:], "svc", "x"}).Get(); !isNeg(a) {
		t.Fatalf("serverset without a live member: %+v", a)
	}
	join(t, admin, root+"/svc", member("127.0.0.1", 1000, "ALIVE"))
	o.await(t, "bound once it has a live member", boundTo("/#/io.l5d.serversets"+root+"/svc", "/x"))
	sub := srv.Client(t)
	join(t, sub, root+"/svc/x", member("127.0.0.2", 1001, "ALIVE"))
	a := o.await(t, "the longer prefix", boundTo("/#/io.l5d.serversets"+root+"/svc/x", "/"))
	observeAddr(t, a.Value.Value.Bound.Addr).await(t, "its members", "127.0.0.2:1001")
	sub.Close() // the longer prefix's only member goes
	o.await(t, "back to the shorter prefix", boundTo("/#/io.l5d.serversets"+root+"/svc", "/x"))
	if l := n.Lookup(dtab.Path{}); !isNeg(l.Get()) {
		t.Fatalf("empty path: %+v", l.Get())
	}
	if l := n.Lookup(dtab.Path{".."}); !isNeg(l.Get()) {
		t.Fatalf("path that is no znode: %+v", l.Get())
	}
}

// Watching and unwatching a name again and again leaves nothing behind:
// the loop stops with its last watcher and ZooKeeper watches are shared.
func TestUnwatchedNamesCostNothing(t *testing.T) {
	srv := zktest.Start(t)
	root := freshRoot()
	n := newNamer(t, srv, Kind)
	for range 20 {
		o := observeTree(t, n.Lookup(dtab.Path{root[1:], "missing"}))
		o.await(t, "negative", isNeg)
		o.cancel()
	}
	deadline := time.Now().Add(wait)
	for {
		n.mu.Lock()
		nodes := len(n.nodes)
		n.mu.Unlock()
		regs, waiters := n.cli.Watches()
		if nodes == 0 && waiters == 0 && regs <= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 unwatched lookups: %d nodes, %d watch registrations, %d waiters", nodes, regs, waiters)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ZooKeeper unreachable: the last answer is kept, the error is visible on
// the state page, and changes made after ZooKeeper is back are followed.
func TestServersetKeepsAnswerWhileZooKeeperDown(t *testing.T) {
	srv := zktest.Start(t)
	root := freshRoot()
	admin := srv.Client(t)
	if err := admin.CreateAll(ctxT(t), root+"/web", gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	// Persistent members, so that they outlive sessions across the restart.
	for i, port := range []int{7001, 7002} {
		if _, err := admin.Create(ctxT(t), fmt.Sprintf("%s/web/member_%010d", root, i), member("127.0.0.1", port, "ALIVE"), 0, gozk.WorldACL(gozk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	n := newNamer(t, srv, Kind)
	o := observeTree(t, n.Lookup(dtab.Path{root[1:], "web"}))
	a := o.await(t, "bound", boundTo("/#/io.l5d.serversets"+root+"/web", "/"))
	addr := a.Value.Value.Bound.Addr
	addrs := observeAddr(t, addr)
	addrs.await(t, "members", "127.0.0.1:7001", "127.0.0.1:7002")

	srv.Stop()
	deadline := time.Now().Add(wait)
	for !strings.Contains(fmt.Sprint(n.State()), "zookeeper") {
		if time.Now().After(deadline) {
			t.Fatalf("no error on the state page while ZooKeeper is down: %+v", n.State())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := addr.Get(); got.State != naming.AddrBound || len(got.Addrs) != 2 {
		t.Fatalf("address set while ZooKeeper is down: %+v", got)
	}
	if got := n.Lookup(dtab.Path{root[1:], "web"}).Get(); !boundTo("/#/io.l5d.serversets"+root+"/web", "/")(got) {
		t.Fatalf("lookup while ZooKeeper is down: %+v", got)
	}

	srv.Restart()
	admin2 := srv.Client(t)
	if _, err := admin2.Create(ctxT(t), root+"/web/member_0000000009", member("127.0.0.1", 7003, "ALIVE"), 0, gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	addrs.await(t, "member added after the restart", "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003")
	deadline = time.Now().Add(wait)
	for strings.Contains(fmt.Sprint(n.State()), "zookeeper") {
		if time.Now().After(deadline) {
			t.Fatalf("error still shown after ZooKeeper is back: %+v", n.State())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// io.l5d.zkLeader: the leader is the member with the lowest sequence
// number; its data is host:port.
func TestZkLeader(t *testing.T) {
	srv := zktest.Start(t)
	root := freshRoot()
	first, second := srv.Client(t), srv.Client(t)
	join(t, first, root+"/election", []byte("127.0.0.1:6001"))
	join(t, second, root+"/election", []byte("127.0.0.2:6002"))
	n := newNamer(t, srv, LeaderKind)
	o := observeTree(t, n.Lookup(dtab.Path{root[1:], "election", "rest"}))
	a := o.await(t, "bound", boundTo("/#/io.l5d.zkLeader"+root+"/election", "/rest"))
	addrs := observeAddr(t, a.Value.Value.Bound.Addr)
	addrs.await(t, "the first candidate leads", "127.0.0.1:6001")
	first.Close()
	addrs.await(t, "the next candidate leads when the leader's session ends", "127.0.0.2:6002")
	second.Close()
	o.await(t, "no candidate left: negative", isNeg)
}

func TestConfig(t *testing.T) {
	var c Config
	if err := config.Load([]byte(`{"zkAddrs": [{"host": "zk", "port": "2181"}], "prefix": "zk/dal09"}`), &c); err != nil {
		t.Fatal(err)
	}
	if p, _ := mountPrefix(c.Prefix, Kind); p.String() != "/#/zk/dal09" {
		t.Fatalf("prefix %s", p)
	}
	for _, tc := range []struct{ text, want string }{
		{`{}`, "zkAddrs: required"},
		{`{"zkAddrs": [{"host": "zk"}]}`, "zkAddrs[0].port: 0 is not a TCP port"},
		{`{"zkAddrs": [{"host": "zk", "port": 1}], "sessionTimeoutMs": 1}`, "sessionTimeoutMs: 1 is not"},
	} {
		var c Config
		err := config.Load([]byte(tc.text), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.text, err, tc.want)
		}
	}
	kinds := config.Kinds[naming.NamerConfig]()
	for _, k := range []string{Kind, LeaderKind} {
		if !slices.Contains(kinds, k) {
			t.Errorf("%s not registered: %v", k, kinds)
		}
	}
}

// When the host's context ends, the namer stops its loops and ends its
// ZooKeeper session (its watches end).
func TestContextEndCloses(t *testing.T) {
	srv := zktest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	n, err := New(naming.Env{Ctx: ctx, Scope: telemetry.NewRegistry().Scope()}, Options{Servers: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	o := observeTree(t, n.Lookup(dtab.Path{"nothing", "here"}))
	o.await(t, "negative", isNeg)
	cancel()
	if !waitFor(func() bool { _, why := n.cli.Status(); return why == "closed" }) {
		t.Fatal("session not ended after the context ended")
	}
}
