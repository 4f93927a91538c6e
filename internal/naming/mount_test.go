package naming

import (
	"errors"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// mountTestConfig builds a static namer (closable when closable is set),
// or fails when fail is set; it records the scope it was given.
type mountTestConfig struct {
	NamerCommon
	fail     bool
	closable bool
	scope    *telemetry.Scope
}

type closableNamer struct {
	*StaticNamer
	closed *bool
}

func (c closableNamer) Close() error { *c.closed = true; return nil }

func (c *mountTestConfig) NewNamer(env Env) (Namer, error) {
	if c.fail {
		return nil, errors.New("boom")
	}
	*c.scope = env.Scope
	n := NewStaticNamer(dtab.Path{"#", "x"}, nil)
	if c.closable {
		return closableNamer{n, new(bool)}, nil
	}
	return n, nil
}

func TestMountNamers(t *testing.T) {
	reg := telemetry.NewRegistry()
	var s1, s2 telemetry.Scope
	ns := []config.Kinded[NamerConfig]{
		{Kind: "io.l5d.fs", Value: &mountTestConfig{scope: &s1, closable: true}},
		{Kind: "io.l5d.fs", Value: &mountTestConfig{NamerCommon: NamerCommon{Prefix: "/fs2/"}, scope: &s2}},
	}
	mounted, closers, err := MountNamers(Env{}, reg.Scope(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounted) != 2 || mounted[0].Prefix.String() != "/#/io.l5d.fs" || mounted[1].Prefix.String() != "/#/fs2" {
		t.Fatalf("mounted at %v; want /#/io.l5d.fs and /#/fs2", mounted)
	}
	if len(closers) != 1 {
		t.Fatalf("%d closers, want 1 (only the first namer has Close)", len(closers))
	}
	s1.Counter("lookups").Inc()
	s2.Counter("lookups").Inc()
	var names []string
	reg.Each(func(m telemetry.Metric) { names = append(names, m.Name) })
	got := strings.Join(names, " ")
	for _, want := range []string{"namer/io.l5d.fs/lookups", "namer/fs2/lookups"} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics %q lack %s", got, want)
		}
	}

	ns = append(ns, config.Kinded[NamerConfig]{Kind: "io.l5d.bad", Value: &mountTestConfig{fail: true}})
	_, closers, err = MountNamers(Env{}, reg.Scope(), ns)
	if err == nil || !strings.Contains(err.Error(), "namers[2] (io.l5d.bad): boom") {
		t.Fatalf("err = %v; want one naming namers[2] (io.l5d.bad)", err)
	}
	if len(closers) != 1 {
		t.Fatalf("%d closers after a failure, want the 1 already built", len(closers))
	}
}

func TestBoundLeaves(t *testing.T) {
	a, b := &Bound{ID: dtab.Path{"a"}}, &Bound{ID: dtab.Path{"b"}}
	tree := dtab.AltTree(
		dtab.NegTree[*Bound](),
		dtab.UnionTree(dtab.Weighted[*Bound]{Weight: 1, Tree: dtab.LeafTree(b)}, dtab.Weighted[*Bound]{Weight: 1, Tree: dtab.LeafTree(a)}),
		dtab.LeafTree(b),
		dtab.LeafTree[*Bound](nil),
	)
	got := BoundLeaves(tree)
	if len(got) != 2 || got[0] != b || got[1] != a {
		t.Fatalf("BoundLeaves = %v; want [b a], each once", got)
	}
	if got := BoundLeaves(dtab.EmptyTree[*Bound]()); len(got) != 0 {
		t.Fatalf("BoundLeaves(empty) = %v; want none", got)
	}
}
