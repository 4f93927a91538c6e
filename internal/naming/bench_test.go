package naming

import (
	"strconv"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// benchDtab is 20 dentries; /svc/<host> goes through 5 lookups:
// /svc → /l2 → /l3 → /l4 → /srv → the namer.
func benchDtab(tb testing.TB) dtab.Dtab {
	var b strings.Builder
	for i := range 15 {
		b.WriteString("/other" + strconv.Itoa(i) + " => /#/io.l5d.fs/x" + strconv.Itoa(i) + ";")
		switch i {
		case 2:
			b.WriteString("/srv => /#/io.l5d.fs;")
		case 5:
			b.WriteString("/l4 => /srv;")
		case 8:
			b.WriteString("/l3 => /l4;")
		case 11:
			b.WriteString("/l2 => /l3;")
		case 14:
			b.WriteString("/svc => /l2;")
		}
	}
	d, err := dtab.Parse(b.String())
	if err != nil || len(d) != 20 {
		tb.Fatalf("bench dtab: %d entries, %v", len(d), err)
	}
	return d
}

func benchInterpreter(hosts int) (*DefaultInterpreter, []dtab.Path) {
	names := map[string][]Address{}
	paths := make([]dtab.Path, hosts)
	for i := range hosts {
		h := "host" + strconv.Itoa(i)
		names[h] = []Address{{Host: "127.0.0.1", Port: 8000 + i, Weight: 1}}
		paths[i] = dtab.Path{"svc", h}
	}
	fs := NewStaticNamer(fsPrefix, names)
	return NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}}), paths
}

// BenchmarkBindUncached binds /svc/<host> from scratch (nothing watched):
// 5 dtab lookups over 20 dentries and one namer lookup.
func BenchmarkBindUncached(b *testing.B) {
	d := benchDtab(b)
	in, paths := benchInterpreter(64)
	if a := in.Bind(d, paths[0]).Get(); a.State != watch.Ok || a.Value.Kind != dtab.Leaf {
		b.Fatalf("bench binding is %v %v", a.State, a.Err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = in.Bind(d, paths[i%len(paths)]).Get()
		i++
	}
}

// BenchmarkBindCached looks up a name that is already bound and watched:
// Bind returns the live binding, Get its current tree.
func BenchmarkBindCached(b *testing.B) {
	d := benchDtab(b)
	in, paths := benchInterpreter(1)
	cancel := in.Bind(d, paths[0]).Subscribe(func(watch.Activity[BoundTree]) {})
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if a := in.Bind(d, paths[0]).Get(); a.State != watch.Ok {
			b.Fatal("not bound")
		}
	}
}

func TestCachedBindDoesNotAllocate(t *testing.T) {
	d := benchDtab(t)
	in, paths := benchInterpreter(1)
	cancel := in.Bind(d, paths[0]).Subscribe(func(watch.Activity[BoundTree]) {})
	defer cancel()
	if n := testing.AllocsPerRun(100, func() { _ = in.Bind(d, paths[0]).Get() }); n != 0 {
		t.Fatalf("cached Bind+Get allocates %v times", n)
	}
}
