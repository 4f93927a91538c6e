package zk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/storage/storagetest"
	"github.com/linnet-mesh/linnet/internal/watch"
	"github.com/linnet-mesh/linnet/internal/zk"
	"github.com/linnet-mesh/linnet/internal/zk/zktest"
)

var prefixes atomic.Int64

func freshPrefix() string { return fmt.Sprintf("/linnet-test/%d/dtabs", prefixes.Add(1)) }

func openStore(t *testing.T, srv *zktest.Server, prefix string) *Store {
	t.Helper()
	s, err := Open(Options{Servers: []string{srv.Addr()}, PathPrefix: prefix, SessionTimeout: 10 * time.Second, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConformance(t *testing.T) {
	srv := zktest.Start(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return openStore(t, srv, freshPrefix()) })
}

// The layout is Linkerd's: <pathPrefix>/<ns> holding the dtab text, the
// version being the znode's data version in 4 big-endian bytes.
func TestLayoutAndVersion(t *testing.T) {
	srv := zktest.Start(t)
	prefix := freshPrefix()
	s := openStore(t, srv, prefix)
	ctx := ctxT(t)
	if err := s.Create(ctx, "ns", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	raw := srv.Client(t)
	n, err := raw.Get(ctx, prefix+"/ns")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(n.Data); got != "/svc=>/#/io.l5d.fs" {
		t.Fatalf("stored text %q", got)
	}
	v, _ := s.Get(ctx, "ns")
	if got := v.Version.String(); got != "AAAAAA==" {
		t.Fatalf("version of a new dtab %s, want AAAAAA== (data version 0)", got)
	}
	if err := s.Update(ctx, "ns", storagetest.Other, v.Version); err != nil {
		t.Fatal(err)
	}
	v, _ = s.Get(ctx, "ns")
	if got := v.Version.String(); got != "AAAAAQ==" {
		t.Fatalf("version after one update %s, want AAAAAQ==", got)
	}
	if _, err := raw.Set(ctx, prefix+"/ns", []byte("/a=>/b"), 1); err != nil {
		t.Fatalf("foreign write with version 1: %v", err)
	}
	if err := s.Update(ctx, "ns", storagetest.Simple, v.Version); !errors.Is(err, storage.ErrVersionMismatch) {
		t.Fatalf("Update after a foreign write: %v", err)
	}
}

func awaitObs(t *testing.T, ch <-chan watch.Activity[storage.Observation], what string, ok func(watch.Activity[storage.Observation]) bool) {
	t.Helper()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	for {
		select {
		case a := <-ch:
			if ok(a) {
				return
			}
		case <-timer.C:
			t.Fatalf("%s: not observed within 20s", what)
		}
	}
}

func observe(t *testing.T, s *Store, ns string) <-chan watch.Activity[storage.Observation] {
	ch := make(chan watch.Activity[storage.Observation], 256)
	cancel := s.Observe(ns).Subscribe(func(a watch.Activity[storage.Observation]) {
		select {
		case ch <- a:
		default:
		}
	})
	t.Cleanup(cancel)
	return ch
}

func hasDtab(text string) func(watch.Activity[storage.Observation]) bool {
	return func(a watch.Activity[storage.Observation]) bool {
		return a.State == watch.Ok && a.Value != nil && a.Value.Dtab.String() == text
	}
}

// Writes by another ZooKeeper client (another namerd, zkCli) reach
// observers; text that is not a dtab is reported, not dropped; a node
// deleted and re-created with the same data version is seen as new.
func TestObservesForeignWrites(t *testing.T) {
	srv := zktest.Start(t)
	prefix := freshPrefix()
	s := openStore(t, srv, prefix)
	raw := srv.Client(t)
	ctx := ctxT(t)
	obs := observe(t, s, "ext")
	awaitObs(t, obs, "absent before the prefix exists", func(a watch.Activity[storage.Observation]) bool { return a.State == watch.Ok && a.Value == nil })
	if err := raw.CreateAll(ctx, prefix, gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Create(ctx, prefix+"/ext", []byte("/a=>/b"), 0, gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	awaitObs(t, obs, "foreign create", hasDtab("/a=>/b"))
	if _, err := raw.Set(ctx, prefix+"/ext", []byte("not a dtab =>"), -1); err != nil {
		t.Fatal(err)
	}
	awaitObs(t, obs, "unparsable text", func(a watch.Activity[storage.Observation]) bool {
		return a.State == watch.Failed && strings.Contains(a.Err.Error(), prefix+"/ext")
	})
	if err := raw.Delete(ctx, prefix+"/ext", -1); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Create(ctx, prefix+"/ext", []byte("/c=>/d"), 0, gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	awaitObs(t, obs, "re-created node", hasDtab("/c=>/d"))
	if _, err := raw.Set(ctx, prefix+"/ext", []byte("/e=>/f"), 0); err != nil {
		t.Fatal(err)
	}
	awaitObs(t, obs, "update of the re-created node", hasDtab("/e=>/f"))
}

// ZooKeeper restarted while namerd watches: observers keep the last state
// while it is down, and a change made after the restart reaches them.
func TestWatchSurvivesRestart(t *testing.T) {
	srv := zktest.Start(t)
	prefix := freshPrefix()
	s := openStore(t, srv, prefix)
	ctx := ctxT(t)
	if err := s.Create(ctx, "ns", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	obs := observe(t, s, "ns")
	awaitObs(t, obs, "initial dtab", hasDtab(storagetest.Simple.String()))

	srv.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for ok, _ := s.ConnectionStatus(); ok; ok, _ = s.ConnectionStatus() {
		if time.Now().After(deadline) {
			t.Fatal("store still connected 10s after ZooKeeper stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a := s.Observe("ns").Get(); !hasDtab(storagetest.Simple.String())(a) {
		t.Fatalf("while ZooKeeper is down the observation is %+v, want the last dtab", a)
	}
	if _, err := s.Get(ctx, "ns"); err == nil {
		t.Fatal("Get succeeded while ZooKeeper is down")
	}
	srv.Restart()

	// A change by another writer after the restart reaches the watcher.
	other := openStore(t, srv, prefix)
	v, err := other.Get(ctx, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Update(ctx, "ns", storagetest.Other, v.Version); err != nil {
		t.Fatal(err)
	}
	awaitObs(t, obs, "update after the restart", hasDtab(storagetest.Other.String()))
}

// The session is lost (here ZooKeeper comes back empty, as a replaced
// ensemble would): the store opens a new session, resynchronises, and
// sees the new state (one namespace gone, one created).
func TestWatchSurvivesSessionLoss(t *testing.T) {
	srv := zktest.Start(t)
	prefix := freshPrefix()
	s := openStore(t, srv, prefix)
	ctx := ctxT(t)
	if err := s.Create(ctx, "gone", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	gone, fresh := observe(t, s, "gone"), observe(t, s, "fresh")
	awaitObs(t, gone, "initial", hasDtab(storagetest.Simple.String()))
	sessions := s.cli.Sessions()
	srv.RestartEmpty()
	other := openStore(t, srv, prefix)
	if err := other.Create(ctx, "fresh", storagetest.Other); err != nil {
		t.Fatal(err)
	}
	awaitObs(t, gone, "namespace gone with the old tree", func(a watch.Activity[storage.Observation]) bool { return a.State == watch.Ok && a.Value == nil })
	awaitObs(t, fresh, "namespace created in the new tree", hasDtab(storagetest.Other.String()))
	if got := s.cli.Sessions(); got <= sessions {
		t.Fatalf("sessions %d, want more than %d: the old session should have expired", got, sessions)
	}
}

// Namespaces that cannot be znode names are invalid, not storage errors.
func TestZnodeNamespaceRules(t *testing.T) {
	srv := zktest.Start(t)
	s := openStore(t, srv, freshPrefix())
	ctx := ctxT(t)
	for _, ns := range []string{"a/b", ".", ".."} {
		if err := s.Create(ctx, ns, storagetest.Simple); !errors.Is(err, storage.ErrInvalidNamespace) {
			t.Errorf("Create(%q): %v, want %v", ns, err, storage.ErrInvalidNamespace)
		}
	}
}

// ACLs are applied to what namerd creates, and authInfo lets it through;
// a namerd without the credentials is refused with ErrForbidden.
func TestACLsAndAuth(t *testing.T) {
	srv := zktest.Start(t)
	prefix := freshPrefix()
	cfg := loadConfig(t, fmt.Sprintf(`{"zkAddrs": [{"host": "127.0.0.1", "port": %d}], "pathPrefix": %q,
		"authInfo": {"scheme": "digest", "auth": "namerd:pw"},
		"acls": [{"scheme": "auth", "id": "", "perms": "crwda"}]}`, srv.HostPort().Port, prefix))
	st, err := cfg.NewStore(storage.Env{Ctx: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := ctxT(t)
	if err := st.Create(ctx, "ns", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "ns"); err != nil {
		t.Fatal(err)
	}
	anon := openStore(t, srv, prefix)
	if _, err := anon.Get(ctx, "ns"); !errors.Is(err, storage.ErrForbidden) {
		t.Fatalf("Get without credentials: %v, want %v", err, storage.ErrForbidden)
	}
	acl, _, err := gozkGetACL(t, srv, prefix+"/ns")
	if err != nil || len(acl) != 1 || acl[0].Scheme != "digest" || !strings.HasPrefix(acl[0].ID, "namerd:") {
		t.Fatalf("ACL of the created node: %+v %v", acl, err)
	}
}

func gozkGetACL(t *testing.T, srv *zktest.Server, p string) ([]gozk.ACL, *gozk.Stat, error) {
	conn, _, err := gozk.Connect([]string{srv.Addr()}, 5*time.Second, gozk.WithLogInfo(false), gozk.WithLogger(nopLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.AddAuth("digest", []byte("namerd:pw")); err != nil {
		t.Fatal(err)
	}
	return conn.GetACL(p)
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

func loadConfig(t *testing.T, text string) *Config {
	t.Helper()
	var c Config
	if err := config.Load([]byte(text), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestConfig(t *testing.T) {
	c := loadConfig(t, `{"zkAddrs": [{"host": "zk", "port": "2181"}]}`)
	if c.PathPrefix != "/dtabs" || c.SessionTimeoutMs != 10000 || zk.Servers(c.ZkAddrs)[0] != "zk:2181" {
		t.Fatalf("defaults: %+v", c)
	}
	for _, tc := range []struct{ text, want string }{
		{`{}`, "zkAddrs: required"},
		{`{"zkAddrs": [{"host": "zk", "port": 0}]}`, "zkAddrs[0].port: 0 is not a TCP port"},
		{`{"zkAddrs": [{"host": "zk", "port": 1}], "pathPrefix": "dtabs"}`, `pathPrefix: "dtabs" must start with /`},
		{`{"zkAddrs": [{"host": "zk", "port": 1}], "pathPrefix": "/"}`, `pathPrefix: must not be the root`},
		{`{"zkAddrs": [{"host": "zk", "port": 1}], "sessionTimeoutMs": 5}`, `sessionTimeoutMs: 5 is not`},
		{`{"zkAddrs": [{"host": "zk", "port": 1}], "authInfo": {"auth": "x"}}`, `authInfo.scheme: required`},
		{`{"zkAddrs": [{"host": "zk", "port": 1}], "authInfo": {"scheme": "digest"}}`, `authInfo.auth: required`},
		{`{"zkAddrs": [{"host": "zk", "port": 1}], "authInfo": {"scheme": "digest", "auth": "namerd"}}`, `authInfo.auth: scheme digest takes "user:password"`},
		{`{"zkAddrs": [{"host": "zk", "port": 1}], "acls": [{"scheme": "world", "id": "anyone", "perms": "rwz"}]}`, `acls[0].perms: "rwz": letter 'z' at 2 is not a permission`},
	} {
		var c Config
		err := config.Load([]byte(tc.text), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.text, err, tc.want)
		}
	}
}

// The kind is registered with namerd's storage extension point.
func TestRegistered(t *testing.T) {
	for _, k := range config.Kinds[storage.Config]() {
		if k == Kind {
			return
		}
	}
	t.Fatalf("%s not registered: %v", Kind, config.Kinds[storage.Config]())
}
