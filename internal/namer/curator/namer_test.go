package curator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	"github.com/linnet-mesh/linnet/internal/routerd"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
	"github.com/linnet-mesh/linnet/internal/zk"
	"github.com/linnet-mesh/linnet/internal/zk/zktest"
)

const wait = 15 * time.Second

var roots atomic.Int64

// freshBase returns a base path no other test uses.
func freshBase() string {
	return fmt.Sprintf("/linnet-curator-%d-%d", time.Now().UnixNano(), roots.Add(1))
}

func newNamer(t *testing.T, srv *zktest.Server, base string) *Namer {
	t.Helper()
	n, err := New(naming.Env{Ctx: t.Context(), Scope: telemetry.NewRegistry().Scope().Scope("namer", Kind)}, Options{
		BasePath:       base,
		Servers:        []string{srv.Addr()},
		SessionTimeout: 10 * time.Second,
		RequestTimeout: 2 * time.Second,
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

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// instance is an instance's JSON as Curator writes it.
func instance(id, address string, port, sslPort int, serviceType string) []byte {
	ssl := "null"
	if sslPort != 0 {
		ssl = fmt.Sprint(sslPort)
	}
	p := "null"
	if port != 0 {
		p = fmt.Sprint(port)
	}
	return fmt.Appendf(nil, `{"name":"web","id":%q,"address":%q,"port":%s,"sslPort":%s,"payload":null,"registrationTimeUTC":%d,"serviceType":%q,"uriSpec":null}`,
		id, address, p, ssl, time.Now().UnixMilli(), serviceType)
}

// register adds an instance the way Curator's ServiceDiscovery does:
// <base>/<service>/<id>, ephemeral for DYNAMIC instances (owned by cli's
// session), persistent for STATIC and PERMANENT ones.
func register(t *testing.T, cli *zk.Client, base, service, id string, data []byte, ephemeral bool) string {
	t.Helper()
	ctx := ctxT(t)
	dir := strings.TrimSuffix(base, "/") + "/" + service
	if err := cli.CreateAll(ctx, dir, gozk.WorldACL(gozk.PermAll)); err != nil {
		t.Fatal(err)
	}
	var flags int32
	if ephemeral {
		flags = gozk.FlagEphemeral
	}
	p, err := cli.Create(ctx, dir+"/"+id, data, flags, gozk.WorldACL(gozk.PermAll))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// watched holds a lookup and its bound address set, as a router does.
type watched struct {
	l    naming.Lookup
	stop []func()
}

func watchLookup(t *testing.T, l naming.Lookup) *watched {
	w := &watched{l: l}
	w.stop = append(w.stop, l.Subscribe(func(watch.Activity[dtab.Tree[naming.Name]]) {}))
	t.Cleanup(func() {
		for _, s := range w.stop {
			s()
		}
	})
	return w
}

// answer describes the lookup now: "neg", "pending", "failed: ...", or
// "<id> <residual> [addr...]".
func (w *watched) answer() string {
	a := w.l.Get()
	switch a.State {
	case watch.Pending:
		return "pending"
	case watch.Failed:
		return "failed: " + a.Err.Error()
	}
	if a.Value.Kind != dtab.Leaf {
		return "neg"
	}
	b := a.Value.Value.Bound
	addr := b.Addr.Get()
	var hs []string
	for _, x := range addr.Addrs {
		s := x.HostPort()
		if x.Meta["ssl"] == true {
			s += "(ssl)"
		}
		hs = append(hs, s)
	}
	return fmt.Sprintf("%s %s %v", b.ID, b.Residual, hs)
}

func (w *watched) await(t *testing.T, what, want string) {
	t.Helper()
	var got string
	if !waitFor(wait, func() bool { got = w.answer(); return got == want }) {
		t.Fatalf("%s: lookup answers %q; want %q", what, got, want)
	}
}

func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{`{"zkAddrs": [{"host": "127.0.0.1", "port": 2181}]}`, "experimental: namer io.l5d.curator is experimental and requires `experimental: true`"},
		{`{"experimental": true}`, "zkAddrs: required"},
		{`{"experimental": true, "zkAddrs": [{"host": "zk", "port": 2181}], "basePath": "services"}`, `basePath: "services" must start with /`},
		{`{"experimental": true, "zkAddrs": [{"host": "zk", "port": 2181}], "basePath": "/a/../b"}`, `basePath: "/a/../b": znode name ".." is reserved`},
		{`{"experimental": true, "zkAddrs": [{"host": "zk", "port": 2181}], "sessionTimeoutMs": 5}`, "sessionTimeoutMs: 5 is not a session timeout"},
	} {
		var c Config
		err := config.Load([]byte(tc.text), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.text, err, tc.want)
		}
	}
	var c Config
	if err := config.Load([]byte(`{"experimental": true, "zkAddrs": [{"host": "zk", "port": "2181"}], "basePath": "/services/"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.BasePath != "/services/" || c.SessionTimeoutMs != 10000 || len(c.ZkAddrs) != 1 {
		t.Errorf("config = %+v", c)
	}
	if err := config.Load([]byte(`{"experimental": true, "zkAddrs": [{"host": "zk", "port": 2181}]}`), &c); err != nil || c.BasePath != "/" {
		t.Errorf("default basePath = %q, %v; want /", c.BasePath, err)
	}
	// A router config: the experimental gate names the namer's entry.
	_, err := routerd.LoadConfig([]byte("namers:\n- kind: io.l5d.curator\n  zkAddrs: [{host: zk, port: 2181}]\nrouters:\n- protocol: http\n  servers: [{port: 0}]\n"))
	if err == nil || !strings.Contains(err.Error(), "namers[0]") || !strings.Contains(err.Error(), "experimental") {
		t.Errorf("router config without experimental: %v", err)
	}
}

// The namer against a real ZooKeeper, one server for every case (each
// start costs a JVM).
func TestCuratorWithZooKeeper(t *testing.T) {
	srv := zktest.Start(t)
	writer := srv.Client(t)

	t.Run("instances followed", func(t *testing.T) {
		base := freshBase() + "/services"
		n := newNamer(t, srv, base)
		w := watchLookup(t, n.Lookup(dtab.Path{"web", "v1", "users"}))
		w.await(t, "no such service", "neg")

		register(t, writer, base, "web", "a", instance("a", "127.0.0.1", 8080, 0, "DYNAMIC"), true)
		w.await(t, "first instance", "/#/io.l5d.curator/web /v1/users [127.0.0.1:8080]")

		// A second session's instances, an SSL one, a host name, a
		// persistent one, and data that is not an instance.
		other := srv.Client(t)
		register(t, other, base, "web", "b", instance("b", "127.0.0.2", 8081, 8443, "DYNAMIC"), true)
		register(t, writer, base, "web", "c", instance("c", "web-1.test", 9000, 0, "PERMANENT"), false)
		register(t, writer, base, "web", "d", []byte(`{"address":"127.0.0.4"}`), false)
		register(t, writer, base, "web", "e", instance("e", "nowhere.test", 9000, 0, "STATIC"), false)
		w.await(t, "several instances", "/#/io.l5d.curator/web /v1/users [127.0.0.1:8080 127.0.0.2:8443(ssl) 127.0.0.9:9000]")

		// A bad instance fixed; one changed; a session ending takes its
		// ephemeral instance along; one deleted.
		if _, err := writer.Set(ctxT(t), base+"/web/d", instance("d", "127.0.0.4", 7000, 0, "STATIC"), -1); err != nil {
			t.Fatal(err)
		}
		if _, err := writer.Set(ctxT(t), base+"/web/a", instance("a", "127.0.0.1", 8090, 0, "DYNAMIC"), -1); err != nil {
			t.Fatal(err)
		}
		w.await(t, "changed instances", "/#/io.l5d.curator/web /v1/users [127.0.0.1:8090 127.0.0.2:8443(ssl) 127.0.0.4:7000 127.0.0.9:9000]")
		other.Close()
		if err := writer.Delete(ctxT(t), base+"/web/c", -1); err != nil {
			t.Fatal(err)
		}
		w.await(t, "instances gone", "/#/io.l5d.curator/web /v1/users [127.0.0.1:8090 127.0.0.4:7000]")

		// No instance left: negative, so dtab fall-backs apply.
		for _, id := range []string{"a", "d", "e"} {
			if err := writer.Delete(ctxT(t), base+"/web/"+id, -1); err != nil {
				t.Fatal(err)
			}
		}
		w.await(t, "all instances gone", "neg")
		if err := writer.Delete(ctxT(t), base+"/web", -1); err != nil {
			t.Fatal(err)
		}
		register(t, writer, base, "web", "f", instance("f", "127.0.0.6", 80, 0, "DYNAMIC"), true)
		w.await(t, "service created again", "/#/io.l5d.curator/web /v1/users [127.0.0.6:80]")

		// Other services are other znodes; names that cannot be znodes are
		// negative without asking ZooKeeper.
		other2 := watchLookup(t, n.Lookup(dtab.Path{"api"}))
		other2.await(t, "another service", "neg")
		for _, p := range []dtab.Path{{".."}, {}, {"a\x01b"}} {
			if got := watchLookup(t, n.Lookup(p)).answer(); got != "neg" {
				t.Errorf("Lookup(%q) = %s; want neg", p, got)
			}
		}

		var st struct {
			BasePath string `json:"basePath"`
			Services map[string]struct {
				State     string   `json:"state"`
				Instances []string `json:"instances"`
				Addresses []string `json:"addresses"`
			} `json:"services"`
		}
		b, _ := json.Marshal(n.State())
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		web := st.Services[base+"/web"]
		if st.BasePath != base+"/" || web.State != "bound" || !slices.Equal(web.Instances, []string{"f"}) || !slices.Equal(web.Addresses, []string{"127.0.0.6:80"}) || st.Services[base+"/api"].State != "neg" {
			t.Errorf("State() = %s", b)
		}
	})

	t.Run("root base path", func(t *testing.T) {
		svc := strings.TrimPrefix(freshBase(), "/")
		n := newNamer(t, srv, "/")
		w := watchLookup(t, n.Lookup(dtab.Path{svc}))
		register(t, writer, "/", svc, "x", instance("x", "127.0.0.7", 81, 0, "DYNAMIC"), true)
		w.await(t, "service under /", "/#/io.l5d.curator/"+svc+" / [127.0.0.7:81]")
	})

	t.Run("last answer kept while ZooKeeper is down", func(t *testing.T) {
		base := freshBase()
		register(t, writer, base, "web", "p", instance("p", "127.0.0.8", 82, 0, "PERMANENT"), false)
		n := newNamer(t, srv, base)
		w := watchLookup(t, n.Lookup(dtab.Path{"web"}))
		w.await(t, "before", "/#/io.l5d.curator/web / [127.0.0.8:82]")
		srv.Stop()
		restarted := false
		defer func() {
			if !restarted {
				srv.Restart()
			}
		}()
		unread := watchLookup(t, n.Lookup(dtab.Path{"unread"}))
		if !waitFor(wait, func() bool {
			b, _ := json.Marshal(n.State())
			return strings.Contains(string(b), `"error"`)
		}) {
			t.Fatalf("state page shows no error while ZooKeeper is down: %v", n.State())
		}
		if got := w.answer(); got != "/#/io.l5d.curator/web / [127.0.0.8:82]" {
			t.Errorf("while down: %s; want the last answer", got)
		}
		var got string
		if !waitFor(wait, func() bool {
			got = unread.answer()
			return strings.HasPrefix(got, "failed: io.l5d.curator "+base+"/unread: ")
		}) {
			t.Errorf("a service never read while ZooKeeper is down: %s; want failed, naming it", got)
		}
		srv.Restart()
		restarted = true
		register(t, writer, base, "web", "q", instance("q", "127.0.0.9", 83, 0, "STATIC"), false)
		w.await(t, "after ZooKeeper is back", "/#/io.l5d.curator/web / [127.0.0.8:82 127.0.0.9:83]")
		unread.await(t, "the unread service once ZooKeeper is back", "neg")
	})

	t.Run("router routes by curator service", func(t *testing.T) {
		base := freshBase() + "/discovery"
		hits := map[string]*atomic.Int64{"one": {}, "two": {}}
		backend := func(name string) *httptest.Server {
			s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits[name].Add(1)
				fmt.Fprint(w, name)
			}))
			t.Cleanup(s.Close)
			return s
		}
		one, two, fallback := backend("one"), backend("two"), httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "fallback") }))
		defer fallback.Close()
		port := func(s *httptest.Server) int {
			return int(s.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port())
		}
		register(t, writer, base, "users", "i1", instance("i1", "127.0.0.1", port(one), 0, "DYNAMIC"), true)

		text := fmt.Sprintf(`
admin: {port: 0}
namers:
- kind: io.l5d.curator
  experimental: true
  zkAddrs: [{host: 127.0.0.1, port: %d}]
  basePath: %s
routers:
- protocol: http
  dtab: |
    /svc => /$/inet/127.0.0.1/%d;
    /svc => /#/io.l5d.curator;
  servers: [{port: 0}]
`, srv.HostPort().Port, base, port(fallback))
		cfg, err := routerd.LoadConfig([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		p, err := routerd.Start(context.Background(), cfg, routerd.Options{Text: []byte(text)})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		client := &http.Client{Timeout: 5 * time.Second}
		get := func(host string) string {
			req, _ := http.NewRequest(http.MethodGet, "http://"+p.ServerAddrs()[0]+"/", nil)
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				return err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		expect := func(what, host, want string) {
			t.Helper()
			var got string
			if !waitFor(wait, func() bool { got = get(host); return got == want }) {
				t.Fatalf("%s: %q; want %q", what, got, want)
			}
		}
		expect("routed to the instance", "users", "200 one")
		expect("unknown service falls back", "nobody", "200 fallback")

		register(t, writer, base, "users", "i2", instance("i2", "127.0.0.1", port(two), 0, "DYNAMIC"), true)
		if !waitFor(wait, func() bool { get("users"); return hits["two"].Load() > 0 }) {
			t.Fatal("the second instance never got a request")
		}
		if err := writer.Delete(ctxT(t), base+"/users/i1", -1); err != nil {
			t.Fatal(err)
		}
		if err := writer.Delete(ctxT(t), base+"/users/i2", -1); err != nil {
			t.Fatal(err)
		}
		expect("no instance left falls back", "users", "200 fallback")

		resp, err := http.Get("http://" + p.AdminAddr() + "/namer_state/io.l5d.curator.json")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), base+"/users") {
			t.Errorf("/namer_state/io.l5d.curator.json: %d %s", resp.StatusCode, b)
		}
	})
}
