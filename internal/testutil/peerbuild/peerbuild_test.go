package peerbuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAwait(t *testing.T) {
	dir := t.TempDir()
	b := Build{Dir: dir, Names: []string{"a", "b"}, Failed: "peer: FAILED", Script: "scripts/peer.sh", WaitEnv: "PEERBUILD_TEST_WAIT", Wait: time.Second}

	// No binaries and no build log: say how to build.
	if err := b.Await(time.Millisecond); err == nil || !strings.Contains(err.Error(), "no build is running") || !strings.Contains(err.Error(), "scripts/peer.sh") {
		t.Fatalf("no build: %v", err)
	}
	// A build in progress that finishes while waiting.
	os.WriteFile(filepath.Join(dir, "build.log"), []byte("building...\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "a"), nil, 0o755)
	go func() {
		time.Sleep(30 * time.Millisecond)
		os.WriteFile(filepath.Join(dir, "b"), nil, 0o755)
	}()
	if err := b.Await(5 * time.Millisecond); err != nil {
		t.Fatalf("build that finishes: %v", err)
	}
	// A failed build: its log is quoted.
	os.Remove(filepath.Join(dir, "b"))
	os.WriteFile(filepath.Join(dir, "build.log"), []byte("compile error x\npeer: FAILED\n"), 0o644)
	if err := b.Await(time.Millisecond); err == nil || !strings.Contains(err.Error(), "compile error x") {
		t.Fatalf("failed build: %v", err)
	}
	// A build that takes too long.
	os.WriteFile(filepath.Join(dir, "build.log"), []byte("still building\n"), 0o644)
	t.Setenv("PEERBUILD_TEST_WAIT", "20ms")
	if err := b.Await(5 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "not built after 20ms (PEERBUILD_TEST_WAIT)") {
		t.Fatalf("slow build: %v", err)
	}
	t.Setenv("PEERBUILD_TEST_WAIT", "soon")
	if err := b.Await(time.Millisecond); err == nil || !strings.Contains(err.Error(), `PEERBUILD_TEST_WAIT="soon"`) {
		t.Fatalf("bad wait: %v", err)
	}
}
