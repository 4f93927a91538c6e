package serversets

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
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
