package cli

import (
	"math"
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
