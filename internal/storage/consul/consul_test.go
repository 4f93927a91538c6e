package consul

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linnet-mesh/linnet/internal/config"
	consulclient "github.com/linnet-mesh/linnet/internal/consul"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/namer/consul/consultest"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/storage/storagetest"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestMain(m *testing.M) {
	code := consultest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var prefixes atomic.Int64

func freshPrefix() string { return fmt.Sprintf("/linnet-test/%d/dtabs", prefixes.Add(1)) }

func openStore(t *testing.T, port int, prefix string, edit ...func(*Options)) *Store {
	t.Helper()
	cli, tr, err := consulclient.NewClient("127.0.0.1", port, "", nil, 8)
	if err != nil {
		t.Fatal(err)
	}
	bo, _ := backoff.New(backoff.Options{Kind: backoff.KindJittered, MinMs: 20, MaxMs: 200})
	o := Options{Client: cli, PathPrefix: prefix, Backoff: &bo, RequestTimeout: 5 * time.Second, WaitTime: 5 * time.Second, OnClose: tr.CloseIdleConnections}
	for _, e := range edit {
		e(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	a := consultest.Shared(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return openStore(t, a.Port(), freshPrefix()) })
}

func TestConformanceConsistentModes(t *testing.T) {
	a := consultest.Shared(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openStore(t, a.Port(), freshPrefix(), func(o *Options) {
			o.ReadConsistency, o.WriteConsistency, o.Datacenter = ModeConsistent, ModeConsistent, "dc1"
		})
	})
}

type kvPair struct {
	Key         string
	Value       []byte
	ModifyIndex uint64
}

func rawGet(t *testing.T, a *consultest.Agent, key string) kvPair {
	t.Helper()
	var ps []kvPair
	if err := json.Unmarshal(a.MustDo(t, http.MethodGet, "/v1/kv/"+key, nil), &ps); err != nil || len(ps) != 1 {
		t.Fatalf("raw get %s: %v %v", key, ps, err)
	}
	return ps[0]
}

// The key, its text and the version are what namerd 1.x's consul store
// used: <pathPrefix>/<ns> without the leading slash, the canonical dtab
// text, and the ModifyIndex.
func TestKeyTextAndVersion(t *testing.T) {
	a := consultest.Shared(t)
	prefix := freshPrefix()
	s := openStore(t, a.Port(), prefix)
	ctx := t.Context()
	if err := s.Create(ctx, "ns", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	kv := rawGet(t, a, strings.TrimPrefix(prefix, "/")+"/ns")
	if got := string(kv.Value); got != "/svc=>/#/io.l5d.fs" {
		t.Fatalf("stored text %q", got)
	}
	v, err := s.Get(ctx, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.FormatUint(kv.ModifyIndex, 10); string(v.Version) != want {
		t.Fatalf("version %q, want the ModifyIndex %s", v.Version, want)
	}
}

// A check-and-set against a version another writer has replaced is a
// version mismatch, and leaves the other writer's dtab in place.
func TestCASConflict(t *testing.T) {
	a := consultest.Shared(t)
	prefix := freshPrefix()
	s1 := openStore(t, a.Port(), prefix)
	s2 := openStore(t, a.Port(), prefix) // another namerd on the same keys
	ctx := t.Context()
	if err := s1.Create(ctx, "ns", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	v, _ := s1.Get(ctx, "ns")
	if err := s2.Update(ctx, "ns", storagetest.Other, v.Version); err != nil {
		t.Fatalf("first update: %v", err)
	}
	err := s1.Update(ctx, "ns", storagetest.Rich, v.Version)
	if !errors.Is(err, storage.ErrVersionMismatch) {
		t.Fatalf("stale update: %v, want %v", err, storage.ErrVersionMismatch)
	}
	got, _ := s1.Get(ctx, "ns")
	if got.Dtab.String() != storagetest.Other.String() {
		t.Fatalf("stored %s, want the winner's %s", got.Dtab, storagetest.Other)
	}
	// Versions that are not ModifyIndexes never match.
	for _, bad := range []string{"", "0", "abc", "007", "-1", v.Version.String()} {
		if err := s1.Update(ctx, "ns", storagetest.Rich, storage.Version(bad)); !errors.Is(err, storage.ErrVersionMismatch) {
			t.Errorf("version %q: %v, want %v", bad, err, storage.ErrVersionMismatch)
		}
	}
	if err := s1.Update(ctx, "missing", storagetest.Rich, v.Version); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("update of a missing namespace: %v, want %v", err, storage.ErrNotFound)
	}
}

func TestNamespaceRules(t *testing.T) {
	a := consultest.Shared(t)
	s := openStore(t, a.Port(), freshPrefix())
	ctx := t.Context()
	for _, ns := range []string{"a/b", "with space", "..", ".", "ümlaut", "a?b"} {
		if err := s.Create(ctx, ns, storagetest.Simple); !errors.Is(err, storage.ErrInvalidNamespace) {
			t.Errorf("Create(%q): %v, want %v", ns, err, storage.ErrInvalidNamespace)
		}
		if err := s.Put(ctx, ns, storagetest.Simple); !errors.Is(err, storage.ErrInvalidNamespace) {
			t.Errorf("Put(%q): %v, want %v", ns, err, storage.ErrInvalidNamespace)
		}
		if _, err := s.Get(ctx, ns); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q): %v, want %v", ns, err, storage.ErrNotFound)
		}
	}
	for _, ns := range []string{"default", "team-a", "Team_B", "v1.2", "0"} {
		if err := s.Create(ctx, ns, storagetest.Simple); err != nil {
			t.Errorf("Create(%q): %v", ns, err)
		}
	}
}

func await[T any](t *testing.T, v watch.Value[watch.Activity[T]], what string, ok func(watch.Activity[T]) bool) {
	t.Helper()
	got := make(chan struct{}, 1)
	cancel := v.Subscribe(func(a watch.Activity[T]) {
		if ok(a) {
			select {
			case got <- struct{}{}:
			default:
			}
		}
	})
	defer cancel()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not seen within 10s (last %+v)", what, v.Get())
	}
}

func hasDtab(d dtab.Dtab) func(watch.Activity[storage.Observation]) bool {
	return func(a watch.Activity[storage.Observation]) bool {
		return a.State == watch.Ok && a.Value != nil && a.Value.Dtab.String() == d.String()
	}
}

// Writes made by others (another namerd, `consul kv put`) reach
// observers; text that is not a dtab is reported; nested keys are not
// namespaces.
func TestObservesForeignWrites(t *testing.T) {
	a := consultest.Shared(t)
	prefix := freshPrefix()
	s := openStore(t, a.Port(), prefix)
	key := strings.TrimPrefix(prefix, "/")
	obs := s.Observe("foreign")
	await(t, obs, "absent", func(x watch.Activity[storage.Observation]) bool { return x.State == watch.Ok && x.Value == nil })

	a.MustDo(t, http.MethodPut, "/v1/kv/"+key+"/foreign", "/svc=>/#/io.l5d.fs;/host=>/srv")
	want, _ := dtab.Parse("/svc=>/#/io.l5d.fs;/host=>/srv")
	await(t, obs, "a foreign write", hasDtab(want))

	a.MustDo(t, http.MethodPut, "/v1/kv/"+key+"/foreign", "this is not => a dtab ((")
	await(t, obs, "an unreadable value", func(x watch.Activity[storage.Observation]) bool {
		return x.State == watch.Failed && strings.Contains(x.Err.Error(), "does not hold a valid dtab")
	})
	if _, err := s.Get(t.Context(), "foreign"); err == nil || !strings.Contains(err.Error(), "does not hold a valid dtab") {
		t.Errorf("Get of an unreadable value: %v", err)
	}

	a.MustDo(t, http.MethodPut, "/v1/kv/"+key+"/nested/deeper", "/a=>/b")
	a.MustDo(t, http.MethodPut, "/v1/kv/"+key+"/ok", "/a=>/b")
	await(t, s.ObserveList(), "the list", func(x watch.Activity[[]string]) bool {
		return x.State == watch.Ok && strings.Join(x.Value, ",") == "foreign,ok"
	})
	names, err := s.List(t.Context())
	if err != nil || strings.Join(names, ",") != "foreign,ok" {
		t.Errorf("List: %v %v, want [foreign ok]", names, err)
	}

	a.MustDo(t, http.MethodDelete, "/v1/kv/"+key+"/foreign", nil)
	await(t, obs, "a foreign delete", func(x watch.Activity[storage.Observation]) bool { return x.State == watch.Ok && x.Value == nil })
}

// The agent stops: observers keep the last state and writes fail with a
// storage error. It comes back (empty, as a dev agent does): observers
// follow the new state.
func TestAgentRestart(t *testing.T) {
	a := consultest.Start(t)
	s := openStore(t, a.Port(), freshPrefix())
	ctx := t.Context()
	if err := s.Create(ctx, "ns", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	obs := s.Observe("ns")
	await(t, obs, "created", hasDtab(storagetest.Simple))

	a.Stop()
	if err := s.Put(ctx, "ns", storagetest.Other); err == nil || !strings.Contains(err.Error(), "consul storage: put ns") {
		t.Fatalf("Put with the agent down: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // several failed watch attempts
	if got := obs.Get(); got.State != watch.Ok || got.Value == nil || got.Value.Dtab.String() != storagetest.Simple.String() {
		t.Fatalf("with the agent down: %+v, want the last state kept", got)
	}

	a.Restart(t)
	await(t, obs, "absent after the restart", func(x watch.Activity[storage.Observation]) bool { return x.State == watch.Ok && x.Value == nil })
	if err := s.Create(ctx, "ns", storagetest.Rich); err != nil {
		t.Fatal(err)
	}
	await(t, obs, "re-created", hasDtab(storagetest.Rich))
}

// With Consul unreachable from the start, observations stay pending, or
// fail when failFast is set.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	s := openStore(t, port, "/namerd/dtabs")
	time.Sleep(200 * time.Millisecond)
	if got := s.Observe("ns").Get(); got.State != watch.Pending {
		t.Fatalf("observation %+v, want pending", got)
	}
	if _, err := s.List(t.Context()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("List: %v", err)
	}

	f := openStore(t, port, "/namerd/dtabs", func(o *Options) { o.FailFast = true })
	await(t, f.Observe("ns"), "failed", func(x watch.Activity[storage.Observation]) bool {
		return x.State == watch.Failed && strings.Contains(x.Err.Error(), "consul storage: watch namerd/dtabs/")
	})
}

// Consul's 403 (ACL denied) is storage.ErrForbidden. A dev agent runs
// without ACLs, so a small stand-in answers as an ACL-enabled agent does.
func TestForbidden(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'key:write' on \"namerd/dtabs/ns\"")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	s := openStore(t, l.Addr().(*net.TCPAddr).Port, "/namerd/dtabs")
	err = s.Put(t.Context(), "ns", storagetest.Simple)
	if !errors.Is(err, storage.ErrForbidden) || !strings.Contains(err.Error(), "lacks permission") {
		t.Fatalf("Put: %v, want %v with Consul's reason", err, storage.ErrForbidden)
	}
}

type storageDoc struct {
	Storage config.Kinded[storage.Config] `yaml:"storage"`
}

func load(text string) (*Config, error) {
	var doc storageDoc
	if err := config.Load([]byte(text), &doc); err != nil {
		return nil, err
	}
	return doc.Storage.Value.(*Config), nil
}

func TestConfig(t *testing.T) {
	c, err := load("storage:\n  kind: io.l5d.consul\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "localhost" || c.Port != 8500 || c.PathPrefix != "/namerd/dtabs" || c.Token != "" || c.Datacenter != "" ||
		c.ReadConsistencyMode != "default" || c.WriteConsistencyMode != "default" || c.FailFast || c.Backoff != nil || c.TLS != nil {
		t.Errorf("defaults: %+v", c)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"  port: 70000\n", "storage.port: 70000 is not a TCP port"},
		{"  pathPrefix: namerd\n", `storage.pathPrefix: "namerd" must start with /`},
		{"  pathPrefix: /\n", "storage.pathPrefix: \"/\" must name a key folder"},
		{"  readConsistencyMode: eventual\n", `storage.readConsistencyMode: "eventual" is not a consistency mode`},
		{"  writeConsistencyMode: ''\n", "storage.writeConsistencyMode: must not be empty"},
		{"  backoff: {kind: jittered, minMs: 10}\n", "backoff.maxMs"},
		{"  backoff: {kind: exponential}\n", `unknown kind "exponential"`},
		{"  tls: {enabled: true}\n", "storage.tls.commonName: TLS needs `commonName`"},
		{"  dc: dc1\n", `unknown key "dc"`},
	} {
		_, err := load("storage:\n  kind: io.l5d.consul\n" + tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.yaml, err, tc.want)
		}
	}
}

// A store built from namerd.yaml keys works against the agent.
func TestConfigStoreAgainstAgent(t *testing.T) {
	a := consultest.Shared(t)
	c, err := load(fmt.Sprintf(`storage:
  kind: io.l5d.consul
  host: 127.0.0.1
  port: %d
  pathPrefix: /cfg-test/dtabs
  datacenter: dc1
  readConsistencyMode: stale
  writeConsistencyMode: consistent
  failFast: true
  backoff: {kind: constant, ms: 50}
`, a.Port()))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.NewStore(storage.Env{Ctx: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := st.Put(ctx, "cfg", storagetest.Other); err != nil {
		t.Fatal(err)
	}
	if kv := rawGet(t, a, "cfg-test/dtabs/cfg"); string(kv.Value) != storagetest.Other.String() {
		t.Fatalf("stored %q", kv.Value)
	}
	await(t, st.Observe("cfg"), "observed", hasDtab(storagetest.Other))
}

// The tls block with clientAuth: the store talks HTTPS to an agent that
// requires a client certificate.
func TestTLSWithClientAuth(t *testing.T) {
	ca := tlstest.NewCA(t, "consul-test")
	server := ca.Issue("server", "consul.test", "127.0.0.1")
	client := ca.Issue("client", "namerd")
	a := consultest.StartTLS(t, &consultest.TLS{CertPath: server.CertPath, KeyPath: server.KeyPath, CAPath: ca.CertPath})
	open := func(clientAuth string) storage.Store {
		c, err := load(fmt.Sprintf(`storage:
  kind: io.l5d.consul
  host: 127.0.0.1
  port: %d
  pathPrefix: /tls/dtabs
  tls:
    commonName: consul.test
    trustCerts: [%q]
%s`, a.HTTPSPort(), ca.CertPath, clientAuth))
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.NewStore(storage.Env{Ctx: t.Context()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	st := open(fmt.Sprintf("    clientAuth: {certPath: %q, keyPath: %q}\n", client.CertPath, client.KeyPath))
	if err := st.Create(t.Context(), "tls", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	await(t, st.Observe("tls"), "observed over TLS", hasDtab(storagetest.Simple))
	if kv := rawGet(t, a, "tls/dtabs/tls"); string(kv.Value) != storagetest.Simple.String() {
		t.Fatalf("stored %q", kv.Value)
	}

	// Without a client certificate the agent refuses the connection.
	anon := open("")
	_, err := anon.Get(t.Context(), "tls")
	if err == nil || !strings.Contains(err.Error(), "consul storage: get tls") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Get without a client certificate: %v, want a TLS failure", err)
	}
}

// What the store sends: the ACL token and datacenter everywhere, the read
// consistency on reads, the write consistency on the reads writes make,
// and check-and-set indexes on writes.
func TestRequestOptions(t *testing.T) {
	a := consultest.Shared(t)
	proxy := consultest.NewProxy(t, a)
	c, err := load(fmt.Sprintf(`storage:
  kind: io.l5d.consul
  host: 127.0.0.1
  port: %d
  pathPrefix: /reqopts/dtabs
  token: s3cret
  datacenter: dc1
  readConsistencyMode: stale
  writeConsistencyMode: consistent
`, proxy.Port()))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.NewStore(storage.Env{Ctx: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	if err := st.Create(ctx, "ro", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	v, err := st.Get(ctx, "ro")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, "ro", storagetest.Other, v.Version); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, "ro", storagetest.Rich, v.Version); !errors.Is(err, storage.ErrVersionMismatch) {
		t.Fatalf("stale update: %v", err)
	}
	if err := st.Delete(ctx, "ro"); err != nil {
		t.Fatal(err)
	}
	reqs := proxy.Requests("/v1/kv/reqopts/dtabs")
	var casWrites, staleReads, consistentReads int
	for _, r := range reqs {
		if r.Token != "s3cret" || r.Query.Get("dc") != "dc1" {
			t.Errorf("request without the token or datacenter: %+v", r)
		}
		_, stale := r.Query["stale"]
		_, consistent := r.Query["consistent"]
		switch {
		case r.Method == http.MethodPut || r.Method == http.MethodDelete:
			if r.Query.Get("cas") == "" {
				t.Errorf("write without cas: %+v", r)
			}
			casWrites++
		case stale && !consistent:
			staleReads++
		case consistent && !stale:
			consistentReads++
		default:
			t.Errorf("read with query %v", r.Query)
		}
	}
	// Writes: create, update, refused update, delete. Reads: Get and the
	// watch (stale); the refused update's and the delete's reads
	// (consistent).
	if casWrites != 4 || staleReads < 2 || consistentReads != 2 {
		t.Errorf("%d CAS writes, %d stale reads, %d consistent reads; want 4, >= 2, 2: %+v", casWrites, staleReads, consistentReads, reqs)
	}
}

// An agent that accepts connections but never answers does not hold the
// watch forever.
func TestSilentAgent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // read nothing, answer nothing
		}
	}()
	s := openStore(t, l.Addr().(*net.TCPAddr).Port, "/namerd/dtabs", func(o *Options) {
		o.FailFast, o.WaitTime, o.RequestTimeout = true, 200*time.Millisecond, 300*time.Millisecond
	})
	await(t, s.Observe("ns"), "a timeout", func(x watch.Activity[storage.Observation]) bool {
		return x.State == watch.Failed && strings.Contains(x.Err.Error(), "deadline exceeded")
	})
}
