package routerd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/zk/zktest"

	// io.l5d.serversets: the announcer and the namer that reads it back.
	_ "github.com/linnet-mesh/linnet/internal/namer/serversets"
)

func TestAnnounceConfigErrors(t *testing.T) {
	const zk = "    zkAddrs: [{host: 127.0.0.1, port: 2181}]\n"
	for _, tc := range []struct{ name, text, want string }{
		{"no announcers", "routers:\n- protocol: http\n  servers:\n  - port: 0\n    announce: [/#/io.l5d.serversets/web]\n",
			"routers[0].servers[0].announce[0]: /#/io.l5d.serversets/web matches no announcer's prefix (the router has no `announcers`)"},
		{"other prefix", "routers:\n- protocol: http\n  announcers:\n  - kind: io.l5d.serversets\n" + zk + "  servers:\n  - port: 0\n    announce:\n    - /#/io.l5d.serversets/web\n    - /#/zk/web\n",
			"routers[0].servers[0].announce[1]: /#/zk/web matches no announcer's prefix (the router's announcers take names below /#/io.l5d.serversets)"},
		{"custom prefix", "routers:\n- protocol: http\n  announcers:\n  - kind: io.l5d.serversets\n    prefix: /zk\n" + zk + "  servers:\n  - port: 0\n    announce: [/#/io.l5d.serversets/web]\n",
			"below /#/zk)"},
		{"only the prefix", "routers:\n- protocol: http\n  announcers:\n  - kind: io.l5d.serversets\n" + zk + "  servers:\n  - port: 0\n    announce: [/#/io.l5d.serversets]\n",
			"routers[0].servers[0].announce[0]: /#/io.l5d.serversets is only the announcer's prefix"},
		{"not a znode name", "routers:\n- protocol: http\n  announcers:\n  - kind: io.l5d.serversets\n" + zk + "  servers:\n  - port: 0\n    announce: [/#/io.l5d.serversets/prod/..]\n",
			`routers[0].servers[0].announce[0]: /#/io.l5d.serversets/prod/.. names no serverset: znode name ".." is reserved (line 8)`},
		{"not a path", "routers:\n- protocol: http\n  servers:\n  - port: 0\n    announce: [web]\n",
			`routers[0].servers[0].announce[0]: invalid path "web"`},
		{"unknown kind", "routers:\n- protocol: http\n  announcers:\n  - kind: io.l5d.consul\n  servers: [{port: 0}]\n",
			`routers[0].announcers[0].kind: unknown kind "io.l5d.consul" (known: io.l5d.serversets) (line 4)`},
		{"no zkAddrs", "routers:\n- protocol: http\n  announcers:\n  - kind: io.l5d.serversets\n  servers: [{port: 0}]\n",
			"routers[0].announcers[0].zkAddrs: required"},
		{"h2 router", "routers:\n- protocol: h2\n  servers:\n  - port: 0\n    announce: [/#/io.l5d.serversets/web]\n",
			"routers[0].servers[0].announce[0]: /#/io.l5d.serversets/web matches no announcer's prefix"},
	} {
		_, err := LoadConfig([]byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v\nwant it to contain %q", tc.name, err, tc.want)
		}
	}
	// A name that two announcers take goes to both: no error.
	if _, err := LoadConfig([]byte("routers:\n- protocol: http\n  announcers:\n  - kind: io.l5d.serversets\n" + zk + "  - kind: io.l5d.serversets\n    pathPrefix: /other\n" + zk + "  servers:\n  - port: 0\n    announce: [/#/io.l5d.serversets/web]\n")); err != nil {
		t.Errorf("two announcers with one prefix: %v", err)
	}
}

func TestAnnounceAddrs(t *testing.T) {
	ifaddrs := func() []netip.Addr {
		return []netip.Addr{
			netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"),
			netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fe80::1"),
			netip.MustParseAddr("192.168.0.7"), netip.MustParseAddr("2001:db8::7"),
			netip.MustParseAddr("10.1.2.3"),
		}
	}
	bound := netip.MustParseAddrPort("[::]:4140")
	for _, tc := range []struct {
		ip       string
		ifaddrs  func() []netip.Addr
		want     string
		fellBack bool
	}{
		{"127.0.0.1", ifaddrs, "127.0.0.1:4140", false},
		{"10.9.9.9", ifaddrs, "10.9.9.9:4140", false},
		{"0.0.0.0", ifaddrs, "10.1.2.3:4140 192.168.0.7:4140", false},
		{"::", ifaddrs, "10.1.2.3:4140 192.168.0.7:4140 [2001:db8::7]:4140", false},
		{"0.0.0.0", func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("127.0.0.1")} }, "127.0.0.1:4140", true},
		{"::", func() []netip.Addr { return nil }, "[::1]:4140", true},
	} {
		got, fellBack := announceAddrs(tc.ip, bound, tc.ifaddrs)
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		if strings.Join(s, " ") != tc.want || fellBack != tc.fellBack {
			t.Errorf("announceAddrs(%s) = %v, %v; want %s, %v", tc.ip, s, fellBack, tc.want, tc.fellBack)
		}
	}
}

// The announcers against a real ZooKeeper, one server for all (each
// ZooKeeper start costs a JVM): a router announces its server, a second
// router's io.l5d.serversets namer routes real requests to it, stopping
// the first withdraws it, and a router started while ZooKeeper is down
// serves at once and is announced once ZooKeeper is up.
func TestAnnouncersWithZooKeeper(t *testing.T) {
	srv := zktest.Start(t)
	zkAddr := fmt.Sprintf("[{host: 127.0.0.1, port: %d}]", srv.HostPort().Port)
	root := fmt.Sprintf("/announce%d", time.Now().UnixNano())
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(time.Second)
		}
		fmt.Fprintf(w, "backend via %s", r.Header.Get("l5d-dst-client"))
	}))
	defer backend.Close()
	beAddr := backend.Listener.Addr().String()
	bePort := beAddr[strings.LastIndexByte(beAddr, ':')+1:]

	// announced starts a router whose server announces itself as
	// /#/io.l5d.serversets/web (the serverset <root>/discovery/web) and
	// routes everything to the backend.
	announced := func(t *testing.T) *Process {
		t.Helper()
		p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: http
  label: web
  dtab: /svc => /$/inet/127.0.0.1/`+bePort+`;
  announcers:
  - kind: io.l5d.serversets
    zkAddrs: `+zkAddr+`
    pathPrefix: `+root+`/discovery
  servers:
  - port: 0
    announce: [/#/io.l5d.serversets/web]
`)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The second router reaches the first only through the serverset.
	front, err := startFrom(t, `
admin: {port: 0}
namers:
- kind: io.l5d.serversets
  zkAddrs: `+zkAddr+`
routers:
- protocol: http
  label: front
  dtab: /svc => /#/io.l5d.serversets`+root+`/discovery/web;
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	viaFront := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+front.ServerAddrs()[0]+path, nil)
		req.Host = "web"
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	raw := srv.Client(t)
	members := func() []string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		kids, err := raw.Children(ctx, root+"/discovery/web")
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		return kids
	}
	wantRouted := func(t *testing.T) {
		t.Helper()
		var code int
		var body string
		if !waitUntil(10*time.Second, func() bool {
			code, body = viaFront("/")
			return code == 200
		}) {
			t.Fatalf("front router: %d %q; want 200 from the backend through the announced router", code, body)
		}
		if want := "backend via /$/inet/127.0.0.1/" + bePort; body != want {
			t.Fatalf("front router answered %q; want %q (the announced router's answer)", body, want)
		}
	}

	t.Run("announced, routed to, withdrawn on stop", func(t *testing.T) {
		web := announced(t)
		wantRouted(t)
		kids := members()
		if len(kids) != 1 || !strings.HasPrefix(kids[0], "member_") {
			t.Fatalf("serverset members = %v; want one member_", kids)
		}
		node, err := raw.Get(context.Background(), root+"/discovery/web/"+kids[0])
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			ServiceEndpoint struct {
				Host string `json:"host"`
				Port int    `json:"port"`
			} `json:"serviceEndpoint"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(node.Data, &m); err != nil {
			t.Fatalf("member data %q: %v", node.Data, err)
		}
		if got := fmt.Sprintf("%s:%d", m.ServiceEndpoint.Host, m.ServiceEndpoint.Port); got != web.ServerAddrs()[0] || m.Status != "ALIVE" {
			t.Fatalf("member = %s %s; want %s ALIVE", got, m.Status, web.ServerAddrs()[0])
		}
		st := announcerPage(t, web)
		if len(st) != 1 || st[0].State != "announced" || st[0].Name != "/#/io.l5d.serversets/web" || st[0].Address != web.ServerAddrs()[0] ||
			st[0].Router != "web" || st[0].Target != root+"/discovery/web" || st[0].Entry != root+"/discovery/web/"+kids[0] {
			t.Fatalf("/admin/announcer = %+v", st)
		}

		// Stopping drains a request in flight; the member is gone before it
		// ends (withdrawn first), and the front router stops routing there.
		slow := make(chan int, 1)
		go func() { code, _ := viaFront("/slow"); slow <- code }()
		time.Sleep(200 * time.Millisecond)
		stopped := make(chan struct{})
		go func() { web.Stop(); close(stopped) }()
		if !waitUntil(5*time.Second, func() bool { return len(members()) == 0 }) {
			t.Fatalf("members after Stop: %v", members())
		}
		select {
		case code := <-slow:
			t.Fatalf("the request in flight ended (%d) before the member was withdrawn", code)
		default:
		}
		if code := <-slow; code != 200 {
			t.Errorf("request in flight during the drain: %d; want 200", code)
		}
		<-stopped
		var code int
		if !waitUntil(10*time.Second, func() bool { code, _ = viaFront("/"); return code != 200 }) {
			t.Errorf("front router still answers %d after the announced router left", code)
		}
	})

	t.Run("ZooKeeper down at start, announced once it is up", func(t *testing.T) {
		srv.Stop()
		restarted := false
		defer func() {
			if !restarted {
				srv.Restart()
			}
		}()
		begin := time.Now()
		web := announced(t)
		if d := time.Since(begin); d > 3*time.Second {
			t.Errorf("Start took %v with ZooKeeper down; want it not to wait", d)
		}
		// It serves meanwhile.
		resp, err := http.Get("http://" + web.ServerAddrs()[0] + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("router with ZooKeeper down: %d; want 200", resp.StatusCode)
		}
		var st []announcementState
		if !waitUntil(10*time.Second, func() bool {
			st = announcerPage(t, web)
			return len(st) == 1 && st[0].State == "pending" && st[0].Error != ""
		}) {
			t.Fatalf("/admin/announcer with ZooKeeper down = %+v; want pending with the error", st)
		}
		srv.Restart()
		restarted = true
		if !waitUntil(20*time.Second, func() bool {
			st = announcerPage(t, web)
			return len(st) == 1 && st[0].State == "announced" && st[0].Error == ""
		}) {
			t.Fatalf("/admin/announcer after ZooKeeper came back = %+v; want announced", st)
		}
		wantRouted(t)
	})
}

func announcerPage(t *testing.T, p *Process) []announcementState {
	t.Helper()
	resp, err := http.Get("http://" + p.AdminAddr() + "/admin/announcer")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("/admin/announcer Content-Type %q", ct)
	}
	var st []announcementState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("/admin/announcer: %v", err)
	}
	return st
}

func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
