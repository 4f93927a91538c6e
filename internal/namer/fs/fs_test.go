package fs

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 5 * time.Second

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// atomicWrite writes like editors and kubectl cp do: a temporary file
// renamed over the target.
func atomicWrite(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	write(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newNamer(t *testing.T, dir string, opts ...Option) *Namer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts = append([]Option{WithSettle(5 * time.Millisecond), WithResolver(fakeResolver)}, opts...)
	n, err := New(dir, naming.Env{Ctx: ctx}, opts...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); n.Close() })
	return n
}

func fakeResolver(_ context.Context, host string) ([]netip.Addr, error) {
	switch host {
	case "two.example":
		return []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")}, nil
	case "localhost":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, fmt.Errorf("no such host")
}

func p(s string) dtab.Path {
	if s == "/" {
		return dtab.Path{}
	}
	return dtab.Path(strings.Split(strings.TrimPrefix(s, "/"), "/"))
}

// describe renders a lookup answer: "neg", "fail: <err>", or
// "<id> <residual> [addrs]".
func describe(a watch.Activity[dtab.Tree[naming.Name]]) string {
	switch {
	case a.State == watch.Failed:
		return "fail: " + a.Err.Error()
	case a.State == watch.Pending:
		return "pending"
	case a.Value.Kind == dtab.Neg:
		return "neg"
	case a.Value.Kind == dtab.Leaf && a.Value.Value.Bound != nil:
		b := a.Value.Value.Bound
		return fmt.Sprintf("%s %s %s", b.ID, b.Residual, describeAddr(b.Addr.Get()))
	}
	return fmt.Sprintf("unexpected %+v", a)
}

func describeAddr(a naming.Addr) string {
	if a.State != naming.AddrBound {
		return fmt.Sprintf("state=%d", a.State)
	}
	var s []string
	for _, x := range a.Addrs {
		e := x.HostPort()
		if x.Weight != 1 {
			e += fmt.Sprintf("*%g", x.Weight)
		}
		s = append(s, e)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// eventually waits (bounded) until the lookup of path describes as want.
func eventually(t *testing.T, l naming.Lookup, want string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := describe(l.Get())
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: got %q, want %q", wait, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "hello"), "# the hello service\n127.1 8888\n\n10.0.0.5 80 * 0.5 # half\n")
	write(t, filepath.Join(dir, "multi"), "two.example 9000\n")
	write(t, filepath.Join(dir, "sub", "inner"), "::1 7000\n[::2] 7001\n")
	write(t, filepath.Join(dir, ".hidden"), "127.0.0.1 1\n")
	write(t, filepath.Join(dir, "empty"), "# nobody yet\n")
	n := newNamer(t, dir)
	tests := []struct{ path, want string }{
		{"/hello", "/#/io.l5d.fs/hello / [10.0.0.5:80*0.5 127.0.0.1:8888]"},
		{"/hello/a/b", "/#/io.l5d.fs/hello /a/b [10.0.0.5:80*0.5 127.0.0.1:8888]"},
		{"/multi", "/#/io.l5d.fs/multi / [10.0.0.1:9000 10.0.0.2:9000]"},
		{"/sub/inner/x", "/#/io.l5d.fs/sub/inner /x [[::1]:7000 [::2]:7001]"},
		{"/empty", "/#/io.l5d.fs/empty / []"},
		{"/sub", "neg"},
		{"/sub/nope", "neg"},
		{"/nope", "neg"},
		{"/.hidden", "neg"},
		{"/", "neg"},
	}
	for _, tt := range tests {
		if got := describe(n.Lookup(p(tt.path)).Get()); got != tt.want {
			t.Errorf("Lookup(%s) = %q, want %q", tt.path, got, tt.want)
		}
	}
	var names []string
	for _, nm := range n.BoundNames().Get() {
		names = append(names, nm.String())
	}
	if got := strings.Join(names, " "); got != "/empty /hello /multi /sub/inner" {
		t.Errorf("BoundNames = %s", got)
	}
	// Lookups of one path share one watch, and bound names are stable.
	a, b := n.Lookup(p("/hello/x")).Get(), n.Lookup(p("/hello/x")).Get()
	if a.Value.Value.Bound != b.Value.Value.Bound {
		t.Error("two lookups of the same path returned different bound names")
	}
}

func TestBadLines(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ content, want string }{
		{"127.0.0.1\n", `line 1: "127.0.0.1": want "host port" or "host port * weight"`},
		{"# ok\n127.0.0.1 80\n127.0.0.1 http\n", `line 3: "127.0.0.1 http": port "http" is not a number from 1 to 65535`},
		{"127.0.0.1 70000\n", `port "70000" is not a number from 1 to 65535`},
		{"127.0.0.1 80 * x\n", `weight "x" is not a non-negative number`},
		{"127.0.0.1 80 + 1\n", `want "host port" or "host port * weight"`},
		{"nowhere.invalid 80\n", `cannot resolve host "nowhere.invalid"`},
	} {
		write(t, filepath.Join(dir, "bad"), tt.content)
		n := newNamer(t, dir)
		got := describe(n.Lookup(p("/bad")).Get())
		file := filepath.Join(dir, "bad")
		if !strings.HasPrefix(got, "fail: io.l5d.fs: "+file+" line ") || !strings.Contains(got, tt.want) {
			t.Errorf("content %q: got %q, want a failure naming %s and containing %q", tt.content, got, file, tt.want)
		}
		n.Close()
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	n := newNamer(t, dir)
	l := n.Lookup(p("/svc/rest"))
	if got := describe(l.Get()); got != "neg" {
		t.Fatalf("before the file exists: %q", got)
	}
	// Pushes reach subscribers.
	pushes := make(chan string, 100)
	cancel := l.Subscribe(func(a watch.Activity[dtab.Tree[naming.Name]]) { pushes <- describe(a) })
	defer cancel()
	expectPush := func(want string) {
		t.Helper()
		timeout := time.After(wait)
		for {
			select {
			case got := <-pushes:
				if got == want {
					return
				}
			case <-timeout:
				t.Fatalf("no push of %q within %v", want, wait)
			}
		}
	}
	expectPush("neg")

	// Create: negative turns bound.
	write(t, filepath.Join(dir, "svc"), "127.0.0.1 8080\n")
	expectPush("/#/io.l5d.fs/svc /rest [127.0.0.1:8080]")

	// Modify in place: the same bound name, new addresses.
	bound := l.Get().Value.Value.Bound
	addrs := make(chan string, 100)
	cancelAddr := bound.Addr.Subscribe(func(a naming.Addr) { addrs <- describeAddr(a) })
	defer cancelAddr()
	write(t, filepath.Join(dir, "svc"), "127.0.0.1 8080\n127.0.0.2 8081\n")
	waitFor(t, addrs, "[127.0.0.1:8080 127.0.0.2:8081]")
	if l.Get().Value.Value.Bound != bound {
		t.Error("an address change replaced the bound name")
	}

	// Atomic replace by rename.
	atomicWrite(t, filepath.Join(dir, "svc"), "127.0.0.3 9\n")
	waitFor(t, addrs, "[127.0.0.3:9]")

	// A bad line fails the lookup; fixing it binds again.
	write(t, filepath.Join(dir, "svc"), "127.0.0.3\n")
	eventually(t, l, `fail: io.l5d.fs: `+filepath.Join(dir, "svc")+` line 1: "127.0.0.3": want "host port" or "host port * weight"`)
	write(t, filepath.Join(dir, "svc"), "127.0.0.4 9\n")
	eventually(t, l, "/#/io.l5d.fs/svc /rest [127.0.0.4:9]")

	if got := n.BoundNames().Get(); len(got) != 1 || got[0].String() != "/svc" {
		t.Errorf("BoundNames = %v, want [/svc]", got)
	}
	// Delete: negative again.
	if err := os.Remove(filepath.Join(dir, "svc")); err != nil {
		t.Fatal(err)
	}
	expectPush("neg")

	// Rename into place from elsewhere, and a new sub-directory.
	other := t.TempDir()
	write(t, filepath.Join(other, "svc"), "127.0.0.5 1\n")
	if err := os.Rename(filepath.Join(other, "svc"), filepath.Join(dir, "svc")); err != nil {
		t.Fatal(err)
	}
	expectPush("/#/io.l5d.fs/svc /rest [127.0.0.5:1]")
	sub := n.Lookup(p("/d/e"))
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "d", "e"), "127.0.0.6 2\n")
	eventually(t, sub, "/#/io.l5d.fs/d/e / [127.0.0.6:2]")
}

// TestConfigMapSwap mimics a Kubernetes ConfigMap volume: names are
// symlinks into ..data, itself a symlink swapped atomically on update.
func TestConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "..v1")
	write(t, filepath.Join(v1, "hello"), "127.0.0.1 1\n")
	must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", "hello"), filepath.Join(dir, "hello")))
	n := newNamer(t, dir)
	l := n.Lookup(p("/hello"))
	eventually(t, l, "/#/io.l5d.fs/hello / [127.0.0.1:1]")

	write(t, filepath.Join(dir, "..v2", "hello"), "127.0.0.2 2\n")
	must(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(v1))
	eventually(t, l, "/#/io.l5d.fs/hello / [127.0.0.2:2]")
}

func waitFor(t *testing.T, ch chan string, want string) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-timeout:
			t.Fatalf("no push of %q within %v", want, wait)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "file"), "")
	for _, root := range []string{filepath.Join(dir, "missing"), filepath.Join(dir, "file")} {
		if n, err := New(root, naming.Env{}); err == nil {
			n.Close()
			t.Errorf("New(%s) succeeded", root)
		}
	}
}

func TestContextStopsWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n, err := New(t.TempDir(), naming.Env{Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-n.done:
	case <-time.After(wait):
		t.Fatal("watch did not stop when the context was cancelled")
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "web"), "127.0.0.1 80\n")
	var doc struct {
		Namers []config.Kinded[naming.NamerConfig] `yaml:"namers"`
	}
	text := "namers:\n- kind: io.l5d.fs\n  rootDir: " + dir + "\n  prefix: /disco\n"
	if err := config.Load([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nm, err := doc.Namers[0].Value.NewNamer(naming.Env{Ctx: ctx})
	if err != nil {
		t.Fatal(err)
	}
	defer nm.(*Namer).Close()
	if got := describe(nm.Lookup(p("/web")).Get()); got != "/#/disco/web / [127.0.0.1:80]" {
		t.Errorf("got %q", got)
	}
	for bad, want := range map[string]string{
		"namers:\n- kind: io.l5d.fs\n":                             "namers[0]: missing required key `rootDir` (line 2)",
		"namers:\n- kind: io.l5d.fs\n  rootDir: \" \"\n":           "namers[0].rootDir: must not be empty (line 3)",
		"namers:\n- kind: io.l5d.fs\n  rootDir: x\n  rootdir: y\n": `namers[0].rootdir: unknown key "rootdir"; did you mean "rootDir"? (line 4)`,
	} {
		err := config.Load([]byte(bad), &doc)
		if err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %s", bad, err, want)
		}
	}
}

func TestLiteralIP(t *testing.T) {
	for in, want := range map[string]string{
		"127.1": "127.0.0.1", "10.1.2": "10.1.0.2", "1.2.3.4": "1.2.3.4", "16909060": "1.2.3.4",
		"::1": "::1", "[fe80::1]": "fe80::1", "256.1.1.1": "", "1.2.3.4.5": "", "localhost": "", "1..2": "",
	} {
		ip, ok := literalIP(in)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != want {
			t.Errorf("literalIP(%q) = %q, want %q", in, got, want)
		}
	}
}
