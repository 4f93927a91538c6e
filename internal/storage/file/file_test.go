package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/storage/storagetest"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return open(t, t.TempDir()) })
}

func TestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	odd := "team/a b%ünï" // needs escaping in a file name
	for ns, d := range map[string]dtab.Dtab{"a": storagetest.Simple, odd: storagetest.Rich, "gone": storagetest.Other} {
		if err := s.Create(ctx, ns, d); err != nil {
			t.Fatalf("Create(%q): %v", ns, err)
		}
	}
	if err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Get(ctx, odd)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); err == nil {
		t.Fatal("Get after Close succeeded")
	}

	s2 := open(t, dir)
	names, _ := s2.List(ctx)
	if strings.Join(names, ",") != "a,"+odd {
		t.Fatalf("List after reopen: %q", names)
	}
	after, err := s2.Get(ctx, odd)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Dtab.Equal(storagetest.Rich) || !after.Version.Equal(before.Version) {
		t.Fatalf("after reopen: %s @%s, want %s @%s", after.Dtab, after.Version, storagetest.Rich, before.Version)
	}
	// The version keeps counting from where it was.
	if err := s2.Update(ctx, odd, storagetest.Simple, before.Version); err != nil {
		t.Fatalf("Update with the pre-restart version: %v", err)
	}
}

func TestRecreateGetsFreshVersion(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	if err := s.Create(ctx, "ns", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	v1, _ := s.Get(ctx, "ns")
	if err := s.Delete(ctx, "ns"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "ns", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	// A client holding the old version must not overwrite the new namespace.
	err := s.Update(ctx, "ns", storagetest.Other, v1.Version)
	if !errors.Is(err, storage.ErrVersionMismatch) {
		t.Fatalf("Update with a version from before the re-create: %v, want version mismatch", err)
	}
}

func TestLockedByAnotherOpener(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: %v, want an in-use error", err)
	}
}

func TestOpenRejectsCorruptFiles(t *testing.T) {
	for name, content := range map[string]string{
		"bad-json.json": `{"namespace":`,
		"bad-dtab.json": `{"namespace":"bad-dtab","version":"AAAAAAAAAAAAAAAAAAAAAQ==","dtab":"/a=>"}`,
		"renamed.json":  `{"namespace":"other","version":"AAAAAAAAAAAAAAAAAAAAAQ==","dtab":""}`,
		"badver.json":   `{"namespace":"badver","version":"!!","dtab":""}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("Open: %v, want an error naming %s", err, name)
			}
		})
	}
}

func TestOpenRemovesLeftoverTemporaries(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, tmpPrefix+"123")
	if err := os.WriteFile(tmp, []byte("half a rec"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	if names, _ := s.List(context.Background()); len(names) != 0 {
		t.Fatalf("List: %q", names)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("leftover temporary file still there: %v", err)
	}
}

func TestConfig(t *testing.T) {
	var c struct {
		Storage config.Kinded[storage.Config] `yaml:"storage"`
	}
	dir := t.TempDir()
	if err := config.Load([]byte("storage:\n  kind: io.linnet.file\n  dir: "+dir+"\n"), &c); err != nil {
		t.Fatalf("Load: %v", err)
	}
	s, err := c.Storage.Value.NewStore(storage.Env{Ctx: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	err = config.Load([]byte("storage:\n  kind: io.linnet.file\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "dir") {
		t.Fatalf("Load without dir: %v", err)
	}
}

// TestCrashLosesNothingAcknowledged kills a writer process with SIGKILL
// in the middle of a stream of writes, then checks that every write the
// writer acknowledged (printed after Put returned) is on disk.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if dir := os.Getenv("LINNET_FILE_CRASH_WRITER"); dir != "" {
		crashWriter(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLosesNothingAcknowledged$")
	cmd.Env = append(os.Environ(), "LINNET_FILE_CRASH_WRITER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int{}
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; sc.Scan() && time.Now().Before(deadline); n++ {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		acked[f[0]] = v
		if n == 150 {
			// Kill while the writer is mid-stream.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd.Wait()
	if len(acked) == 0 {
		t.Fatal("the writer acknowledged nothing")
	}
	s := open(t, dir)
	for ns, want := range acked {
		got, err := s.Get(context.Background(), ns)
		if err != nil {
			t.Fatalf("acknowledged namespace %s lost: %v", ns, err)
		}
		n, _ := strconv.Atoi(got.Dtab[0].Dst.Value[1])
		// The writer is sequential over 5 namespaces: it may have completed
		// one more write (counter want+5) without living to report it.
		if n != want && n != want+5 {
			t.Fatalf("namespace %s: counter %d on disk, %d acknowledged", ns, n, want)
		}
	}
}

func crashWriter(dir string) {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 1; ; i++ {
		ns := "ns" + strconv.Itoa(i%5)
		d := dtab.Dtab{{Prefix: dtab.Prefix{{Label: "count"}}, Dst: dtab.LeafTree(dtab.Path{"n", strconv.Itoa(i)})}}
		if err := s.Put(context.Background(), ns, d); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("%s %d\n", ns, i)
	}
}
