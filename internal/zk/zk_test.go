package zk_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/testutil/freeport"
	"github.com/linnet-mesh/linnet/internal/zk"
	"github.com/linnet-mesh/linnet/internal/zk/zktest"
)

func TestParsePerms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int32
		err  string
	}{
		{"crwda", gozk.PermAll, ""},
		{"r", gozk.PermRead, ""},
		{"RW", gozk.PermRead | gozk.PermWrite, ""},
		{"adwrc", gozk.PermAll, ""},
		{"", 0, "empty"},
		{"crx", 0, `letter 'x' at 2 is not a permission`},
		{"rr", 0, `letter 'r' repeated`},
		{"r w", 0, `letter ' ' at 1`},
	} {
		got, err := zk.ParsePerms(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePerms(%q): error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePerms(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseACLs(t *testing.T) {
	open, err := zk.ParseACLs("acls", nil)
	if err != nil || len(open) != 1 || open[0].Scheme != "world" || open[0].Perms != gozk.PermAll {
		t.Fatalf("default ACL: %+v %v", open, err)
	}
	got, err := zk.ParseACLs("acls", []zk.ACL{{Scheme: "digest", ID: "u:x", Perms: "rw"}, {Scheme: "world", ID: "anyone", Perms: "r"}})
	if err != nil || len(got) != 2 || got[0].Perms != gozk.PermRead|gozk.PermWrite || got[1].ID != "anyone" {
		t.Fatalf("ParseACLs: %+v %v", got, err)
	}
	for _, tc := range []struct {
		acls []zk.ACL
		want string
	}{
		{[]zk.ACL{{ID: "anyone", Perms: "r"}}, "acls[0].scheme: required"},
		{[]zk.ACL{{Scheme: "world", Perms: "r"}}, "acls[0].id: required"},
		{[]zk.ACL{{Scheme: "world", ID: "anyone", Perms: "r"}, {Scheme: "world", ID: "anyone", Perms: "crwdq"}}, `acls[1].perms: "crwdq": letter 'q' at 4`},
	} {
		_, err := zk.ParseACLs("acls", tc.acls)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseACLs(%+v): %v, want %q", tc.acls, err, tc.want)
		}
	}
}

func TestValidateAddrs(t *testing.T) {
	if err := zk.ValidateAddrs("zkAddrs", []zk.HostPort{{Host: "zk1", Port: 2181}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addrs []zk.HostPort
		want  string
	}{
		{nil, "zkAddrs: required"},
		{[]zk.HostPort{{Port: 2181}}, "zkAddrs[0].host: required"},
		{[]zk.HostPort{{Host: "a", Port: 1}, {Host: "b", Port: 70000}}, "zkAddrs[1].port: 70000 is not a TCP port"},
		{[]zk.HostPort{{Host: "a,b", Port: 1}}, `zkAddrs[0].host: "a,b"`},
		{[]zk.HostPort{{Host: "a"}}, "zkAddrs[0].port: 0 is not a TCP port (1-65535); give ZooKeeper's client port (e.g. 2181), it has no default"},
	} {
		err := zk.ValidateAddrs("zkAddrs", tc.addrs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateAddrs(%+v): %v, want %q", tc.addrs, err, tc.want)
		}
	}
}

// authInfo needs both keys (Linkerd's docs mark them required); a digest
// credential is "user:password". Without these checks ZooKeeper fails the
// session's authentication and nothing names the field.
func TestValidateAuthInfo(t *testing.T) {
	var none *zk.AuthInfo
	for _, ok := range []*zk.AuthInfo{none, {Scheme: "digest", Auth: "namerd:secret"}, {Scheme: "ip", Auth: "127.0.0.1"}} {
		if err := ok.Validate("authInfo"); err != nil {
			t.Errorf("Validate(%+v): %v", ok, err)
		}
	}
	for _, tc := range []struct {
		a    zk.AuthInfo
		want string
	}{
		{zk.AuthInfo{Auth: "namerd:secret"}, "authInfo.scheme: required"},
		{zk.AuthInfo{Scheme: "digest"}, "authInfo.auth: required"},
		{zk.AuthInfo{Scheme: "digest", Auth: "namerd"}, `authInfo.auth: scheme digest takes "user:password"`},
	} {
		err := tc.a.Validate("authInfo")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v): %v, want %q", tc.a, err, tc.want)
		}
	}
}

// With nothing listening at the address, a request's "no session" error
// and Status say why (the connection is refused), not just "not
// connected yet"; the request still fails within its deadline.
func TestClientSaysWhyNotConnected(t *testing.T) {
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c, err := zk.Dial(zk.Options{Servers: []string{addr}, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	start := time.Now()
	_, err = c.Get(ctxT(t, 1500*time.Millisecond), "/")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "no session (failed to connect to "+addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Get with nothing listening: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Get took %v", el)
	}
	if ok, why := c.Status(); ok || !strings.Contains(why, "connection refused") {
		t.Fatalf("Status() = %v, %q; want the refused connection", ok, why)
	}
}

// Linkerd configs quote ports ('2181'); both forms decode, anything else
// is an error at the key.
func TestPortDecoding(t *testing.T) {
	type doc struct {
		ZkAddrs []zk.HostPort `yaml:"zkAddrs"`
	}
	var d doc
	if err := config.Load([]byte("zkAddrs:\n- {host: a, port: 2181}\n- {host: b, port: '2182'}\n"), &d); err != nil {
		t.Fatal(err)
	}
	if d.ZkAddrs[0].Port != 2181 || d.ZkAddrs[1].Port != 2182 || d.ZkAddrs[1].String() != "b:2182" {
		t.Fatalf("decoded %+v", d.ZkAddrs)
	}
	err := config.Load([]byte("zkAddrs:\n- {host: a, port: twenty}\n"), &d)
	if err == nil || !strings.Contains(err.Error(), `zkAddrs[0].port`) || !strings.Contains(err.Error(), `"twenty" is not a port number`) {
		t.Fatalf("bad port: %v", err)
	}
}

func TestValidatePath(t *testing.T) {
	for _, ok := range []string{"/", "/dtabs", "/a/b-c/d.e"} {
		if err := zk.ValidatePath(ok); err != nil {
			t.Errorf("ValidatePath(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "dtabs", "/a/", "/a//b", "/a/./b", "/a/../b", "/a\x01"} {
		if err := zk.ValidatePath(bad); err == nil {
			t.Errorf("ValidatePath(%q) accepted", bad)
		}
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestClientAgainstServer(t *testing.T) {
	srv := zktest.Start(t)
	c := srv.Client(t)
	ctx := ctxT(t, 20*time.Second)
	if err := c.CreateAll(ctx, "/a/b/c", gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateAll(ctx, "/a/b", gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatalf("CreateAll of an existing path: %v", err)
	}
	st, err := c.Set(ctx, "/a/b/c", []byte("x"), 0)
	if err != nil || st.Version != 1 {
		t.Fatalf("Set: %+v %v", st, err)
	}
	if _, err := c.Set(ctx, "/a/b/c", []byte("y"), 0); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("Set with a stale version: %v", err)
	}
	n, w, err := c.GetW(ctx, "/a/b/c")
	if err != nil || string(n.Data) != "x" {
		t.Fatalf("GetW: %q %v", n.Data, err)
	}
	other := srv.Client(t)
	if _, err := other.Set(ctx, "/a/b/c", []byte("z"), -1); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w:
		if ev.Type != gozk.EventNodeDataChanged || ev.Path != "/a/b/c" {
			t.Fatalf("watch event %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
	if err := c.Delete(ctx, "/a/b", -1); !errors.Is(err, zk.ErrNotEmpty) {
		t.Fatalf("Delete of a parent: %v", err)
	}
	if _, err := c.Get(ctx, "/nope"); !errors.Is(err, zk.ErrNoNode) {
		t.Fatalf("Get of a missing node: %v", err)
	}
}

// While the server is down, requests fail within their deadline (they do
// not queue), the state says why, and the client recovers when the server
// is back.
func TestClientServerDown(t *testing.T) {
	srv := zktest.Start(t)
	c := srv.Client(t)
	srv.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for ok, _ := c.Status(); ok; ok, _ = c.Status() {
		if time.Now().After(deadline) {
			t.Fatal("client still reports a session 10s after the server stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, why := c.Status(); why == "" {
		t.Fatal("no reason given while disconnected")
	}
	start := time.Now()
	_, err := c.Get(ctxT(t, 700*time.Millisecond), "/")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no session") {
		t.Fatalf("Get while down: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Get while down took %v", el)
	}
	srv.Restart()
	if err := c.WaitReady(ctxT(t, 15*time.Second)); err != nil {
		t.Fatalf("no session after the restart: %v", err)
	}
	if _, err := c.Get(ctxT(t, 5*time.Second), "/"); err != nil {
		t.Fatal(err)
	}
}

// authInfo is added to the session before requests run: a node whose ACL
// grants only that digest identity is readable by it, not by others.
func TestClientAuth(t *testing.T) {
	srv := zktest.Start(t)
	sum := sha1.Sum([]byte("linnet:secret"))
	acls, err := zk.ParseACLs("acls", []zk.ACL{{Scheme: "digest", ID: "linnet:" + base64.StdEncoding.EncodeToString(sum[:]), Perms: "crwda"}})
	if err != nil {
		t.Fatal(err)
	}
	authed, err := zk.Dial(zk.Options{Servers: []string{srv.Addr()}, Auth: &zk.AuthInfo{Scheme: "digest", Auth: "linnet:secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer authed.Close()
	ctx := ctxT(t, 15*time.Second)
	if _, err := authed.Create(ctx, "/private", []byte("s"), 0, acls); err != nil {
		t.Fatal(err)
	}
	if n, err := authed.Get(ctx, "/private"); err != nil || string(n.Data) != "s" {
		t.Fatalf("authed Get: %q %v", n.Data, err)
	}
	anon := srv.Client(t)
	if _, err := anon.Get(ctx, "/private"); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("anonymous Get: %v, want %v", err, zk.ErrNoAuth)
	}
}

// Watching the same path again and again (resyncs, subscribers coming and
// going) keeps one registration: callers whose ctx ended leave it, and the
// event reaches every caller still waiting.
func TestWatchesShared(t *testing.T) {
	srv := zktest.Start(t)
	c := srv.Client(t)
	for i := range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		ok, _, err := c.ExistsW(ctx, "/later")
		if err != nil || ok {
			t.Fatalf("ExistsW #%d: %v %v", i, ok, err)
		}
		_, _, err = c.ChildrenW(ctx, "/")
		if err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	// Waiters leave asynchronously, as their ctx ends.
	deadline := time.Now().Add(5 * time.Second)
	for regs, waiters := c.Watches(); regs != 2 || waiters != 0; regs, waiters = c.Watches() {
		if time.Now().After(deadline) {
			t.Fatalf("after 50 cancelled watches: %d registrations, %d waiters; want 2, 0", regs, waiters)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx := ctxT(t, 15*time.Second)
	_, w1, err := c.ExistsW(ctx, "/later")
	if err != nil {
		t.Fatal(err)
	}
	_, w2, err := c.ExistsW(ctx, "/later")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client(t).Create(ctx, "/later", nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	for i, w := range []zk.Watch{w1, w2} {
		select {
		case ev := <-w:
			if ev.Type != gozk.EventNodeCreated {
				t.Fatalf("waiter %d: %+v", i, ev)
			}
		case <-ctx.Done():
			t.Fatalf("waiter %d: no event", i)
		}
	}
	// Now /later exists: a new ExistsW watches its data, and fires on delete.
	ok, w3, err := c.ExistsW(ctx, "/later")
	if err != nil || !ok {
		t.Fatalf("ExistsW after create: %v %v", ok, err)
	}
	if err := c.Delete(ctx, "/later", -1); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w3:
		if ev.Type != gozk.EventNodeDeleted {
			t.Fatalf("after delete: %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no event after delete")
	}
}

// Closing the client ends every watch with EventNotWatching.
func TestCloseEndsWatches(t *testing.T) {
	srv := zktest.Start(t)
	c := srv.Client(t)
	_, w, err := c.ExistsW(ctxT(t, 10*time.Second), "/never")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case ev := <-w:
		if ev.Type != gozk.EventNotWatching {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch not ended by Close")
	}
	if _, err := c.Get(ctxT(t, time.Second), "/"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Get after Close: %v", err)
	}
}

// An ensemble that comes back without its data refuses the old
// connection for ever (the client has seen newer transactions than the
// server's); the client starts a new connection after the session
// timeout and gets a new session.
func TestClientNewSessionAfterDataLoss(t *testing.T) {
	srv := zktest.Start(t)
	c, err := zk.Dial(zk.Options{Servers: []string{srv.Addr()}, SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t, 30*time.Second)
	for i := range 20 { // move the client's last seen transaction well ahead
		if _, err := c.Create(ctx, fmt.Sprintf("/n%d", i), nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	_, w, err := c.ExistsW(ctx, "/n0")
	if err != nil {
		t.Fatal(err)
	}
	before := c.Sessions()
	srv.RestartEmpty()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("no session with the new ensemble: %v", err)
	}
	if got := c.Sessions(); got <= before {
		t.Fatalf("sessions %d, want more than %d", got, before)
	}
	if _, err := c.Get(ctx, "/n0"); !errors.Is(err, zk.ErrNoNode) {
		t.Fatalf("Get of a node of the lost tree: %v", err)
	}
	select {
	case ev := <-w:
		if ev.Type != gozk.EventNotWatching {
			t.Fatalf("watch of the old connection: %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("the old connection's watch never ended")
	}
}

// When the client replaces a connection that has had no session for the
// session timeout, the old connection's watches end at once, so that
// their owners resynchronise on the new one. The library ends them only
// when its Close is through, and a connection waiting for a server's
// handshake answer (here a port that accepts and never answers, as a
// server starting up can) holds that for ten read timeouts: namerd's dtab
// watch stayed stale for 35s after ZooKeeper came back.
func TestClientReplacedConnectionEndsWatches(t *testing.T) {
	srv := zktest.Start(t)
	const session = 2 * time.Second // the library's handshake wait: 10 × 2/3 of it
	c, err := zk.Dial(zk.Options{Servers: []string{srv.Addr()}, SessionTimeout: session})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t, 30*time.Second)
	if _, err := c.Create(ctx, "/w", nil, 0, gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	_, w, err := c.GetW(ctx, "/w")
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	// A listener that accepts and never answers, on the server's port.
	var ln net.Listener
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", srv.Addr()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cannot take the server's port: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, nc)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, nc := range held {
			nc.Close()
		}
		mu.Unlock()
	}()
	start := time.Now()
	select {
	case ev := <-w:
		if ev.Type != gozk.EventNotWatching {
			t.Fatalf("watch: %+v; want EventNotWatching", ev)
		}
		// The replacement comes after the session timeout without a
		// session (measured from the disconnection); allow for that and
		// scheduling, well under the library's 13s handshake wait.
		if el := time.Since(start); el > session+4*time.Second {
			t.Fatalf("watch ended after %v", el)
		}
	case <-time.After(session + 4*time.Second):
		t.Fatalf("the watch did not end within %v of the server going silent", session+4*time.Second)
	}
}
