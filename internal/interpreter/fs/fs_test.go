package fs

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/naming/dtabsource"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
	"github.com/linnet-mesh/linnet/internal/watch"
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func watchFile(t *testing.T, file string) (*dtabsource.Live, *logBuf) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var lb logBuf
	live, err := Watch(ctx, file, slog.New(slog.NewTextHandler(&lb, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return live, &lb
}

func waitDtab(t *testing.T, live *dtabsource.Live, want string) {
	t.Helper()
	w := dtab.MustParse(want)
	if !linnettest.WaitFor(5*time.Second, func() bool {
		d, ok := live.Current()
		return ok && d.Equal(w)
	}) {
		d, ok := live.Current()
		t.Fatalf("dtab never became %q; have %q (ok=%v)", want, d, ok)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replace writes s to a temporary file and renames it over path.
func replace(t *testing.T, path, s string) {
	t.Helper()
	tmp := path + ".tmp"
	write(t, tmp, s)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchFollowsTheFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dtab")
	live, logs := watchFile(t, file)

	// No file yet: pending, and said once.
	time.Sleep(50 * time.Millisecond)
	if a := live.Value().Get(); a.State != watch.Pending {
		t.Fatalf("missing file: %v, want pending", a.State)
	}
	if !strings.Contains(logs.String(), "does not exist") {
		t.Fatalf("missing file not logged: %q", logs.String())
	}

	write(t, file, "/svc => /#/a;")
	waitDtab(t, live, "/svc => /#/a")

	replace(t, file, "/svc => /#/b;")
	waitDtab(t, live, "/svc => /#/b")

	// Unparsable: logged, the last good dtab stays.
	write(t, file, "/svc => => ;")
	if !linnettest.WaitFor(5*time.Second, func() bool { return strings.Contains(logs.String(), "keeping the last good dtab") }) {
		t.Fatalf("parse error not logged: %q", logs.String())
	}
	if !strings.Contains(logs.String(), file) {
		t.Fatalf("log does not name the file: %q", logs.String())
	}
	waitDtab(t, live, "/svc => /#/b")

	// Removed: the last good dtab stays; recreated: followed again.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	waitDtab(t, live, "/svc => /#/b")
	write(t, file, "/svc => /#/c;")
	waitDtab(t, live, "/svc => /#/c")

	// Emptied: believed once it stays empty, then the empty dtab.
	write(t, file, "")
	waitDtab(t, live, "")
	write(t, file, "/svc => /#/d;")
	waitDtab(t, live, "/svc => /#/d")
}

// TestWatchConfigMapVolume follows a file laid out as Kubernetes mounts a
// ConfigMap: dtab -> ..data/dtab, ..data -> ..<timestamp>, updated by
// swapping the ..data symlink.
func TestWatchConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "dtab"), content)
	}
	version("..v1", "/svc => /#/one;")
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/dtab", filepath.Join(dir, "dtab")); err != nil {
		t.Fatal(err)
	}
	live, _ := watchFile(t, filepath.Join(dir, "dtab"))
	waitDtab(t, live, "/svc => /#/one")

	version("..v2", "/svc => /#/two;")
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
		t.Fatal(err)
	}
	waitDtab(t, live, "/svc => /#/two")
}

func TestFirstFileBadFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dtab")
	write(t, file, "/svc =>")
	live, _ := watchFile(t, file)
	a := live.Value().Get()
	if a.State != watch.Failed || !strings.Contains(a.Err.Error(), file) {
		t.Fatalf("bad first file: %+v, want failed naming the file", a)
	}
	write(t, file, "/svc => /#/x")
	waitDtab(t, live, "/svc => /#/x")
}

func TestConfig(t *testing.T) {
	var w struct {
		Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
	}
	err := config.Load([]byte("interpreter:\n  kind: io.l5d.fs\n"), &w)
	if err == nil || !strings.Contains(err.Error(), "dtabFile") {
		t.Fatalf("config without dtabFile: %v", err)
	}
	if err := config.Load([]byte("interpreter:\n  kind: io.l5d.fs\n  dtabFile: /x/dtab\n"), &w); err != nil {
		t.Fatal(err)
	}
	if c, ok := w.Interpreter.Value.(*Config); !ok || c.DtabFile != "/x/dtab" {
		t.Fatalf("decoded %#v", w.Interpreter.Value)
	}
	if err := (&Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "dtabFile") {
		t.Fatalf("missing dtabFile: %v", err)
	}
	if _, err := Watch(context.Background(), filepath.Join(t.TempDir(), "no", "such", "dtab"), nil); err == nil || !strings.Contains(err.Error(), "dtabFile") {
		t.Fatalf("unwatchable directory: %v", err)
	}
}
