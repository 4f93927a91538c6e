package cli

import (
	"bytes"
	"context"
	"io"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"off": math.MaxInt64, "0": math.MaxInt64, "1048576": 1 << 20, "64MiB": 64 << 20,
		"2GiB": 2 << 30, "512KiB": 512 << 10, "300MB": 300e6, "1GB": 1e9, "100B": 100, " 8 MiB ": 8 << 20,
	} {
		got, err := parseMemoryLimit(in)
		if err != nil || got != want {
			t.Errorf("parseMemoryLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1MiB", "lots", "1.5GiB", "10TiB", "99999999999GiB"} {
		if _, err := parseMemoryLimit(in); err == nil || !strings.Contains(err.Error(), "-memory.limit="+in) {
			t.Errorf("parseMemoryLimit(%q): err %v, want one naming the value", in, err)
		}
	}
}

func TestRouterMemoryLimitFlag(t *testing.T) {
	f, err := parseRouterArgs(IO{}, []string{"-memory.limit=128MiB", "linkerd.yaml"})
	if err != nil || f.memLimit != "128MiB" {
		t.Fatalf("got %+v, %v", f, err)
	}
	if _, err := parseRouterArgs(IO{}, []string{"-memory.limit=huge", "linkerd.yaml"}); err == nil || !strings.Contains(err.Error(), "huge") {
		t.Fatalf("bad value: err %v", err)
	}
}

// namerd honours -memory.limit as the router does (it used to accept and
// ignore it).
func TestNamerdAppliesMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // start, then stop at once
	cfg := "admin: {ip: 127.0.0.1, port: 0}\nstorage: {kind: io.l5d.inMemory}\ninterfaces:\n- {kind: io.l5d.httpController, ip: 127.0.0.1, port: 0}\n"
	var errb bytes.Buffer
	s := IO{In: strings.NewReader(cfg), Out: io.Discard, Err: &errb}
	if err := runNamerd(ctx, s, []string{"-memory.limit=123MiB", "-"}); err != nil {
		t.Fatalf("runNamerd: %v (log %s)", err, errb.String())
	}
	if got := debug.SetMemoryLimit(-1); got != 123<<20 {
		t.Errorf("memory limit = %d, want %d", got, 123<<20)
	}
	if !strings.Contains(errb.String(), "128974848 bytes (-memory.limit)") {
		t.Errorf("log = %q, want the limit", errb.String())
	}
}
