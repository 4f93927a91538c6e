package rewrite

import (
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
)

type doc struct {
	Namers []config.Kinded[naming.NamerConfig] `yaml:"namers"`
}

func load(t *testing.T, text string) (naming.Namer, error) {
	t.Helper()
	var d doc
	if err := config.Load([]byte(text), &d); err != nil {
		return nil, err
	}
	return d.Namers[0].Value.NewNamer(naming.Env{})
}

func path(s string) dtab.Path {
	if s == "/" {
		return dtab.Path{}
	}
	return dtab.Path(strings.Split(strings.TrimPrefix(s, "/"), "/"))
}

func TestRewrite(t *testing.T) {
	n, err := load(t, `namers:
- kind: io.l5d.rewrite
  prefix: /portNsSvcToK8s
  pattern: "/{port}/{ns}/{svc}"
  name: "/k8s/{ns}/{port}/{svc}"
`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"/http/default/web", "/k8s/default/http/web"},
		// Linkerd's RewritingNamer answers with the name alone.
		{"/http/default/web/extra/more", "/k8s/default/http/web"},
		{"/http/default", "neg"},
		{"/", "neg"},
	}
	for _, tt := range tests {
		a := n.Lookup(path(tt.in)).Get()
		got := "neg"
		if a.Value.Kind == dtab.Leaf {
			got = "/" + strings.Join(a.Value.Value.Path, "/")
		}
		if got != tt.want {
			t.Errorf("%s → %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestLiteralsWildcardsAndInnerCaptures(t *testing.T) {
	pat, err := config.ParsePathPattern("/svc/*/{name}.{ns}.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(pat, "/#/io.l5d.k8s/{ns}/http/{name}")
	if err != nil {
		t.Fatal(err)
	}
	a := n.Lookup(path("/svc/x/web.prod.svc.cluster.local/r")).Get()
	if got := "/" + strings.Join(a.Value.Value.Path, "/"); got != "/#/io.l5d.k8s/prod/http/web" {
		t.Errorf("got %s", got)
	}
	for _, miss := range []string{"/other/x/web.prod.svc.cluster.local", "/svc/x/web.prod"} {
		if a := n.Lookup(path(miss)).Get(); a.Value.Kind != dtab.Neg {
			t.Errorf("%s matched: %+v", miss, a.Value)
		}
	}
	// An empty capture cannot become a path element.
	pat2, _ := config.ParsePathPattern("/a{x}")
	n2, _ := New(pat2, "/b/{x}")
	if a := n2.Lookup(path("/a")).Get(); a.Value.Kind != dtab.Neg {
		t.Errorf("empty capture gave %+v", a.Value)
	}
}

func TestConfigErrors(t *testing.T) {
	for text, want := range map[string]string{
		"namers:\n- kind: io.l5d.rewrite\n  pattern: /{a}\n  name: /b/{a}\n":               "namers[0].prefix: io.l5d.rewrite needs a `prefix` (where it is mounted below /#/) (line 2)",
		"namers:\n- kind: io.l5d.rewrite\n  prefix: /p\n  pattern: /{a}\n  name: /b/{c}\n": `namers[0].name: name "/b/{c}" refers to {c}, which pattern "/{a}" does not capture (line 5)`,
		"namers:\n- kind: io.l5d.rewrite\n  prefix: /p\n  pattern: /{a}\n  name: b\n":      `namers[0].name: name "b" must be a path starting with '/' (line 5)`,
		"namers:\n- kind: io.l5d.rewrite\n  prefix: /p\n  pattern: \"{a}\"\n  name: /b\n":  `namers[0].pattern: pattern "{a}" must start with '/' (line 4)`,
		"namers:\n- kind: io.l5d.rewrite\n  prefix: /p\n  name: /b\n":                      "namers[0]: missing required key `pattern` (line 2)",
	} {
		_, err := load(t, text)
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n got  %v\n want %s", text, err, want)
		}
	}
}
