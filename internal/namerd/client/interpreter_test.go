package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/storage/memory"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// fakeNamerd serves a namerd controller on a fixed loopback port and can be
// stopped and started again there.
type fakeNamerd struct {
	t     *testing.T
	addr  string
	store storage.Store
	fs    *naming.StaticNamer
	srv   *http.Server
}

func startNamerd(t *testing.T) *fakeNamerd {
	prefix := dtab.Path{"#", "io.l5d.fs"}
	fs := naming.NewStaticNamer(prefix, map[string][]naming.Address{
		"v1": {{Host: "127.0.0.1", Port: 1001, Weight: 1}},
		"v2": {{Host: "127.0.0.1", Port: 1002, Weight: 1}},
	})
	n := &fakeNamerd{t: t, fs: fs, store: memory.New(map[string]dtab.Dtab{"default": dtab.MustParse("/svc/world=>/#/io.l5d.fs/v1")})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = l.Addr().String()
	n.serve(l)
	t.Cleanup(n.stop)
	return n
}

func (n *fakeNamerd) serve(l net.Listener) {
	c := namerd.NewController(n.store, []naming.MountedNamer{{Prefix: dtab.Path{"#", "io.l5d.fs"}, Namer: n.fs}}, telemetry.Scope{}, nil)
	n.srv = &http.Server{Handler: c}
	go n.srv.Serve(l)
}

func (n *fakeNamerd) stop() {
	if n.srv != nil {
		n.srv.Close()
		n.srv = nil
	}
}

func (n *fakeNamerd) restart() {
	var l net.Listener
	var err error
	for range 50 { // the port may linger briefly
		if l, err = net.Listen("tcp", n.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		n.t.Fatal(err)
	}
	n.serve(l)
}

func newTestInterpreter(t *testing.T, addr string) *Interpreter {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var d net.Dialer
	return NewInterpreter(ctx, InterpreterOptions{
		Namespace: "default",
		Dial:      func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
		RetryBase: 50 * time.Millisecond,
		RetryMax:  200 * time.Millisecond,
	})
}

// leafIDs renders a bound tree's leaves as "id@addrs" for comparisons.
func describe(t naming.BoundTree) string {
	switch t.Kind {
	case dtab.Leaf:
		a := t.Value.Addr.Get()
		var eps []string
		for _, x := range a.Addrs {
			eps = append(eps, x.HostPort())
		}
		return t.Value.ID.String() + "@" + strings.Join(eps, ",")
	case dtab.Union:
		var parts []string
		for _, b := range t.Branches {
			parts = append(parts, fmt.Sprintf("%v*%s", b.Weight, describe(b.Tree)))
		}
		return strings.Join(parts, " & ")
	case dtab.Neg:
		return "~"
	}
	return fmt.Sprint(t.Kind)
}

// follower subscribes to a binding and to the addresses of its leaves.
type follower struct {
	ch     chan string
	cancel func()
}

func followBinding(t *testing.T, b naming.Binding) *follower {
	f := &follower{ch: make(chan string, 1000)}
	var addrCancels []func()
	f.cancel = b.Subscribe(func(a watch.Activity[naming.BoundTree]) {
		if a.State != watch.Ok {
			return
		}
		var subscribe func(naming.BoundTree)
		subscribe = func(t naming.BoundTree) {
			switch t.Kind {
			case dtab.Leaf:
				addrCancels = append(addrCancels, t.Value.Addr.Subscribe(func(naming.Addr) { f.ch <- describe(a.Value) }))
			case dtab.Union:
				for _, br := range t.Branches {
					subscribe(br.Tree)
				}
			}
		}
		subscribe(a.Value)
		f.ch <- describe(a.Value)
	})
	t.Cleanup(func() {
		f.cancel()
		for _, c := range addrCancels {
			c()
		}
	})
	return f
}

func (f *follower) await(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	last := ""
	for {
		select {
		case got := <-f.ch:
			if got == want {
				return
			}
			last = got
		case <-deadline:
			t.Fatalf("binding did not become %q within %v (last %q)", want, within, last)
		}
	}
}

func TestInterpreterFollowsNamerd(t *testing.T) {
	nd := startNamerd(t)
	in := newTestInterpreter(t, nd.addr)
	f := followBinding(t, in.Bind(dtab.MustParse("/svc/other=>/#/io.l5d.fs/v2"), dtab.MustParsePath("/svc/world")))
	f.await(t, "/#/io.l5d.fs/v1@127.0.0.1:1001", 5*time.Second)

	// A dtab change in namerd reaches the router within a second.
	ctx := context.Background()
	start := time.Now()
	if err := nd.store.Put(ctx, "default", dtab.MustParse("/svc/world=>0.9*/#/io.l5d.fs/v1 & 0.1*/#/io.l5d.fs/v2")); err != nil {
		t.Fatal(err)
	}
	f.await(t, "0.9*/#/io.l5d.fs/v1@127.0.0.1:1001 & 0.1*/#/io.l5d.fs/v2@127.0.0.1:1002", time.Second)
	t.Logf("dtab change reached the interpreter in %v", time.Since(start))

	// Address changes arrive on the addr stream.
	nd.fs.Set("v2", naming.Address{Host: "127.0.0.1", Port: 2002, Weight: 1})
	f.await(t, "0.9*/#/io.l5d.fs/v1@127.0.0.1:1001 & 0.1*/#/io.l5d.fs/v2@127.0.0.1:2002", time.Second)

	// The router's dtab (sent as the dtab parameter) takes precedence.
	f2 := followBinding(t, in.Bind(dtab.MustParse("/svc/world=>/#/io.l5d.fs/v2"), dtab.MustParsePath("/svc/world")))
	f2.await(t, "/#/io.l5d.fs/v2@127.0.0.1:2002", 5*time.Second)

	// namerd goes away: the last state stays; it comes back with a new
	// dtab: the interpreter reconnects and follows.
	nd.stop()
	time.Sleep(300 * time.Millisecond)
	if got := describe(in.Bind(dtab.MustParse("/svc/other=>/#/io.l5d.fs/v2"), dtab.MustParsePath("/svc/world")).Get().Value); got != "0.9*/#/io.l5d.fs/v1@127.0.0.1:1001 & 0.1*/#/io.l5d.fs/v2@127.0.0.1:2002" {
		t.Fatalf("state while namerd is down: %q", got)
	}
	if err := nd.store.Put(ctx, "default", dtab.MustParse("/svc/world=>/#/io.l5d.fs/v2")); err != nil {
		t.Fatal(err)
	}
	nd.restart()
	f.await(t, "/#/io.l5d.fs/v2@127.0.0.1:2002", 3*time.Second)
}

func TestInterpreterReleasesStreams(t *testing.T) {
	nd := startNamerd(t)
	in := newTestInterpreter(t, nd.addr)
	f := followBinding(t, in.Bind(nil, dtab.MustParsePath("/svc/world")))
	f.await(t, "/#/io.l5d.fs/v1@127.0.0.1:1001", 5*time.Second)
	f.cancel()
	nb := in.bind.Len()
	if nb != 0 {
		t.Fatalf("%d bind watches left after the last subscriber left", nb)
	}
}

func TestInterpreterConfig(t *testing.T) {
	var c struct {
		Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
	}
	nd := startNamerd(t)
	host, port, _ := net.SplitHostPort(nd.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := namerdtest.NewInterpreter(t, ctx, fmt.Sprintf("  kind: io.l5d.namerd.http\n  experimental: true\n  dst: /$/inet/%s/%s\n  retry: {baseSeconds: 0.05, maxSeconds: 1}\n", host, port), telemetry.Scope{})
	f := followBinding(t, in.Bind(nil, dtab.MustParsePath("/svc/world")))
	f.await(t, "/#/io.l5d.fs/v1@127.0.0.1:1001", 5*time.Second)

	// dst by DNS name: resolved by /$/inet before the first dial.
	in = namerdtest.NewInterpreter(t, ctx, fmt.Sprintf("  kind: io.l5d.namerd.http\n  experimental: true\n  dst: /$/inet/localhost/%s\n  retry: {baseSeconds: 0.05, maxSeconds: 0.2}\n", port), telemetry.Scope{})
	f = followBinding(t, in.Bind(nil, dtab.MustParsePath("/svc/world")))
	f.await(t, "/#/io.l5d.fs/v1@127.0.0.1:1001", 5*time.Second)

	for _, bad := range []string{
		"interpreter:\n  kind: io.l5d.namerd.http\n",
		"interpreter:\n  kind: io.l5d.namerd.http\n  dst: nope\n",
		"interpreter:\n  kind: io.l5d.namerd.http\n  dst: /$/inet/h/1\n  retry: {baseSeconds: 10, maxSeconds: 1}\n",
	} {
		if err := config.Load([]byte(bad), &c); err == nil || !strings.Contains(err.Error(), "interpreter") {
			t.Errorf("Load(%q): %v, want an error naming the interpreter", bad, err)
		}
	}
}

// The router's admin delegator explains through namerd; the tree survives
// the JSON round trip byte for byte.
func TestInterpreterExplains(t *testing.T) {
	nd := startNamerd(t)
	in := newTestInterpreter(t, nd.addr)
	if err := nd.store.Put(context.Background(), "default", dtab.MustParse("/svc/world=>0.9*/#/io.l5d.fs/v1 & 0.1*/#/io.l5d.fs/nope;/svc=>/$/fail")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	local := dtab.MustParse("/svc/other=>~")
	n, err := naming.Delegate(ctx, in, local, dtab.MustParsePath("/svc/world"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(naming.MarshalDelegateJSON(n))
	direct, err := http.Get("http://" + nd.addr + "/api/1/delegate/default?path=/svc/world&dtab=" + url.QueryEscape(local.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Body.Close()
	want, _ := io.ReadAll(direct.Body)
	if got != string(want) || !strings.Contains(got, `"type":"union"`) {
		t.Fatalf("explanation through the interpreter:\n got %s\nwant %s", got, want)
	}
}
