package memory

import (
	"strings"

	"context"
	"github.com/linnet-mesh/linnet/internal/config"
	"testing"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Store { return New(nil) })
}

// The wire versions are namerd's: 8-byte big-endian counters from 1.
func TestVersionsAreNamerdCounters(t *testing.T) {
	ctx := context.Background()
	s := New(map[string]dtab.Dtab{"seeded": storagetest.Simple})
	check := func(ns, want string) {
		t.Helper()
		v, err := s.Get(ctx, ns)
		if err != nil {
			t.Fatalf("Get(%s): %v", ns, err)
		}
		if got := v.Version.String(); got != want {
			t.Fatalf("Get(%s): version %s, want %s", ns, got, want)
		}
	}
	check("seeded", "AAAAAAAAAAE=")
	if err := s.Create(ctx, "x", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	check("x", "AAAAAAAAAAE=")
	v, _ := storage.ParseVersion("AAAAAAAAAAE=")
	if err := s.Update(ctx, "x", storagetest.Other, v); err != nil {
		t.Fatal(err)
	}
	check("x", "AAAAAAAAAAI=")
	if err := s.Put(ctx, "x", storagetest.Rich); err != nil {
		t.Fatal(err)
	}
	check("x", "AAAAAAAAAAM=")
	if err := s.Delete(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "x", storagetest.Rich); err != nil {
		t.Fatal(err)
	}
	check("x", "AAAAAAAAAAE=")
}

func TestConfig(t *testing.T) {
	var c struct {
		Storage config.Kinded[storage.Config] `yaml:"storage"`
	}
	text := "storage:\n  kind: io.l5d.inMemory\n  experimental: true\n  namespaces:\n    default: |\n      /svc => /#/io.l5d.fs;\n      /host => /svc;\n"
	if err := config.Load([]byte(text), &c); err != nil {
		t.Fatalf("Load: %v", err)
	}
	s, err := c.Storage.Value.NewStore(storage.Env{Ctx: context.Background()})
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	got, err := s.Get(context.Background(), "default")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if want := "/svc=>/#/io.l5d.fs;/host=>/svc"; got.Dtab.String() != want {
		t.Fatalf("seeded dtab %q, want %q", got.Dtab.String(), want)
	}

	bad := "storage:\n  kind: io.l5d.inMemory\n  namespaces:\n    default: /svc => \n"
	err = config.Load([]byte(bad), &c)
	if err == nil || !strings.Contains(err.Error(), "storage.namespaces.default") || !strings.Contains(err.Error(), "invalid dtab") {
		t.Fatalf("Load of a bad seed: got %v, want an error naming storage.namespaces.default", err)
	}
}
