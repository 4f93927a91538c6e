package naming

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// A namer's own transformers apply to its answers, in binding and in the
// delegator, and follow the namer's changes; answers that still hold a
// path to delegate pass through untouched (Linkerd's
// NameTreeTransformer.wrap).
func TestNamerTransformers(t *testing.T) {
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"world": {{Host: "127.0.0.1", Port: 1}}})
	other := NewStaticNamer(dtab.Path{"#", "other"}, map[string][]Address{"x": nil})
	in := NewInterpreter([]MountedNamer{
		{Prefix: fsPrefix, Namer: fs, Transformers: []Transformer{markTransformer{}}},
		{Prefix: dtab.Path{"#", "other"}, Namer: other},
	})
	b := in.Bind(nil, dtab.MustParsePath("/#/io.l5d.fs/world"))
	wantTree(t, b.Get(), "/%/mark/#/io.l5d.fs/world+/")
	// Another namer's answers are not transformed.
	wantTree(t, in.Bind(nil, dtab.MustParsePath("/#/other/x")).Get(), "/#/other/x+/")

	// Pushed changes are transformed too: the name disappears (Neg), then
	// comes back.
	got := make(chan watch.Activity[BoundTree], 4)
	cancel := b.Subscribe(func(a watch.Activity[BoundTree]) { got <- a })
	defer cancel()
	<-got
	fs.Delete("world")
	if a := <-got; a.State != watch.Ok || a.Value.Kind != dtab.Neg {
		t.Fatalf("after delete: %v %v, want Neg", a.State, a.Value.Kind)
	}
	fs.Set("world", Address{Host: "127.0.0.1", Port: 2})
	wantTree(t, <-got, "/%/mark/#/io.l5d.fs/world+/")

	n, err := Delegate(context.Background(), in, nil, dtab.MustParsePath("/#/io.l5d.fs/world"))
	if err != nil {
		t.Fatal(err)
	}
	if js := string(MarshalDelegateJSON(n)); !strings.Contains(js, "/%/mark/#/io.l5d.fs/world") {
		t.Errorf("delegator does not show the transformed id: %s", js)
	}
}

func TestTransformedLookupLeavesPathsAlone(t *testing.T) {
	path := dtab.Tree[Name]{Kind: dtab.Alt, Alts: []dtab.Tree[Name]{
		dtab.LeafTree(Name{Path: dtab.MustParsePath("/svc/next")}),
		dtab.LeafTree(Name{Bound: &Bound{ID: dtab.Path{"b"}}}),
	}}
	l := transformedLookup{l: watch.Const[watch.Activity[dtab.Tree[Name]]]{V: watch.OkActivity(path)}, ts: []Transformer{markTransformer{}}}
	a := l.Get()
	if a.Value.Alts[0].Value.Path.String() != "/svc/next" || a.Value.Alts[1].Value.Bound.ID.String() != "/b" {
		t.Fatalf("a tree with a path leaf was transformed: %+v", a.Value)
	}
	failed := watch.FailedActivity[dtab.Tree[Name]](context.Canceled)
	if a := (transformedLookup{l: watch.Const[watch.Activity[dtab.Tree[Name]]]{V: failed}, ts: []Transformer{markTransformer{}}}).Get(); a.State != watch.Failed {
		t.Fatalf("a failed answer became %v", a.State)
	}
}

// MountNamers builds a namer's `transformers:`, and a bad one names its
// place.
func TestMountNamersBuildsTransformers(t *testing.T) {
	reg := telemetry.NewRegistry()
	var s telemetry.Scope
	cfg := &mountTestConfig{scope: &s}
	cfg.Transformers = []config.Kinded[TransformerConfig]{{Kind: "test.mark", Value: markTransformerConfig{}}}
	mounted, _, err := MountNamers(Env{}, reg.Scope(), []config.Kinded[NamerConfig]{{Kind: "io.l5d.fs", Value: cfg}})
	if err != nil {
		t.Fatal(err)
	}
	if len(mounted[0].Transformers) != 1 {
		t.Fatalf("mounted %d transformers, want 1", len(mounted[0].Transformers))
	}
	cfg.Transformers = []config.Kinded[TransformerConfig]{{Kind: "test.bad", Value: markTransformerConfig{fail: true}}}
	_, _, err = MountNamers(Env{}, reg.Scope(), []config.Kinded[NamerConfig]{{Kind: "io.l5d.fs", Value: cfg}})
	if err == nil || !strings.Contains(err.Error(), "namers[0].transformers[0] (test.bad): bad transformer") {
		t.Fatalf("err = %v, want one naming namers[0].transformers[0]", err)
	}
}

type markTransformerConfig struct{ fail bool }

func (c markTransformerConfig) NewTransformer(Env) (Transformer, error) {
	if c.fail {
		return nil, errBadTransformer
	}
	return markTransformer{}, nil
}

var errBadTransformer = errors.New("bad transformer")
