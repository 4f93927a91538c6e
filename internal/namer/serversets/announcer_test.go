package serversets

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/zk"
	"github.com/linnet-mesh/linnet/internal/zk/zktest"
)

func newAnnouncer(t *testing.T, srv *zktest.Server, pathPrefix string) *Announcer {
	t.Helper()
	var c AnnouncerConfig
	if err := config.Load([]byte(`{"zkAddrs": [{"host": "127.0.0.1", "port": `+strings.TrimPrefix(srv.Addr(), "127.0.0.1:")+`}], "pathPrefix": "`+pathPrefix+`"}`), &c); err != nil {
		t.Fatal(err)
	}
	a, err := c.NewAnnouncer(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// Announced servers are serverset members the namer reads; they join
// again when their session is lost, and leave on Close.
func TestAnnouncer(t *testing.T) {
	srv := zktest.Start(t)
	root := freshRoot()
	a := newAnnouncer(t, srv, root+"/discovery")
	name := dtab.Path{"#", "io.l5d.serversets", "web"}
	if set, ok := a.Serverset(name); !ok || set != root+"/discovery/web" {
		t.Fatalf("Serverset(%s) = %q, %v", name, set, ok)
	}
	one, err := a.Announce(name, netip.MustParseAddrPort("127.0.0.1:4001"))
	if err != nil {
		t.Fatal(err)
	}
	two, err := a.Announce(name, netip.MustParseAddrPort("127.0.0.2:4002"))
	if err != nil {
		t.Fatal(err)
	}

	n := newNamer(t, srv, Kind)
	o := observeTree(t, n.Lookup(dtab.Path{root[1:], "discovery", "web"}))
	b := o.await(t, "bound", boundTo("/#/io.l5d.serversets"+root+"/discovery/web", "/"))
	addrs := observeAddr(t, b.Value.Value.Bound.Addr)
	addrs.await(t, "both announced servers", "127.0.0.1:4001", "127.0.0.2:4002")
	if st := one.Status(); !st.Announced || st.Target != root+"/discovery/web" || !strings.HasPrefix(st.Entry, root+"/discovery/web/member_") || st.Err != "" {
		t.Fatalf("Status() = %+v", st)
	}

	srv.RestartEmpty() // the tree is gone: new sessions, members joined again
	raw := srv.Client(t)
	if !waitFor(func() bool {
		m1, ok1 := one.Member()
		m2, ok2 := two.Member()
		if !ok1 || !ok2 {
			return false
		}
		// The new tree starts empty: a member in it joined again.
		_, err1 := raw.Get(ctxT(t), m1)
		_, err2 := raw.Get(ctxT(t), m2)
		return err1 == nil && err2 == nil
	}) {
		t.Fatal("servers not announced again after the tree was lost")
	}
	addr := b.Value.Value.Bound.Addr
	if !waitFor(func() bool { return slices.Equal(hostPorts(addr.Get()), []string{"127.0.0.1:4001", "127.0.0.2:4002"}) }) {
		t.Fatalf("namer after the tree was lost: %+v", addr.Get())
	}

	if err := one.Close(); err != nil {
		t.Fatal(err)
	}
	if _, joined := one.Member(); joined {
		t.Fatal("still a member after Close")
	}
	if st := one.Status(); st.Announced || st.Entry != "" {
		t.Fatalf("Status() after Close = %+v", st)
	}
	addrs.await(t, "after one left", "127.0.0.2:4002")
	if err := one.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	a.Close()
	if _, joined := two.Member(); joined {
		t.Fatal("still a member after the announcer closed")
	}
	o.await(t, "negative when all left", isNeg)
}

func TestAnnouncerRefuses(t *testing.T) {
	srv := zktest.Start(t)
	a := newAnnouncer(t, srv, "/discovery")
	for _, tc := range []struct {
		name dtab.Path
		addr string
		want string
	}{
		{dtab.Path{"#", "io.l5d.fs", "web"}, "127.0.0.1:1", "not a name of this announcer"},
		{dtab.Path{"#", "io.l5d.serversets"}, "127.0.0.1:1", "not a name of this announcer"},
		{dtab.Path{"#", "io.l5d.serversets", ".."}, "127.0.0.1:1", "not a name of this announcer"},
		{dtab.Path{"#", "io.l5d.serversets", "web"}, "0.0.0.0:80", "not an address others can reach"},
		{dtab.Path{"#", "io.l5d.serversets", "web"}, "127.0.0.1:0", "not an address others can reach"},
	} {
		_, err := a.Announce(tc.name, netip.MustParseAddrPort(tc.addr))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Announce(%s, %s): %v, want %q", tc.name, tc.addr, err, tc.want)
		}
	}
	var c AnnouncerConfig
	err := config.Load([]byte(`{"zkAddrs": [], "pathPrefix": "discovery"}`), &c)
	if err == nil || !strings.Contains(err.Error(), "zkAddrs: required") {
		t.Errorf("config without zkAddrs: %v", err)
	}
	err = config.Load([]byte(`{"zkAddrs": [{"host": "zk", "port": 1}], "pathPrefix": "discovery"}`), &c)
	if err == nil || !strings.Contains(err.Error(), `pathPrefix: "discovery" must start with /`) {
		t.Errorf("relative pathPrefix: %v", err)
	}
}

// A ZooKeeper whose address does not resolve yet (cluster DNS starting)
// neither fails NewAnnouncer nor the announcement: it joins once the
// client can be dialled.
func TestAnnouncerDialRetried(t *testing.T) {
	srv := zktest.Start(t)
	var fails atomic.Int32
	fails.Store(3)
	dialZK = func(o zk.Options) (*zk.Client, error) {
		if fails.Add(-1) >= 0 {
			return nil, errors.New("lookup zk.test: no such host")
		}
		return zk.Dial(o)
	}
	t.Cleanup(func() { dialZK = zk.Dial })
	root := freshRoot()
	a := newAnnouncer(t, srv, root+"/discovery")
	an, err := a.Announce(dtab.Path{"#", "io.l5d.serversets", "web"}, netip.MustParseAddrPort("127.0.0.1:4001"))
	if err != nil {
		t.Fatal(err)
	}
	if !waitFor(func() bool { st := an.Status(); return !st.Announced && strings.Contains(st.Err, "no such host") }) {
		t.Fatalf("while the dial fails: %+v", an.Status())
	}
	if !waitFor(func() bool { return an.Status().Announced }) {
		t.Fatalf("not announced once the dial works: %+v", an.Status())
	}
	kids, err := srv.Client(t).Children(ctxT(t), root+"/discovery/web")
	if err != nil || len(kids) != 1 {
		t.Fatalf("members = %v, %v; want one", kids, err)
	}
}
