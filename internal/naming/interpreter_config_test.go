package naming

import (
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestDefaultInterpreterConfig(t *testing.T) {
	var c struct {
		Interpreter config.Kinded[InterpreterConfig] `yaml:"interpreter"`
	}
	if err := config.Load([]byte("interpreter:\n  kind: default\n"), &c); err != nil {
		t.Fatal(err)
	}
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"world": nil})
	in, err := c.Interpreter.Value.NewInterpreter(InterpreterEnv{Namers: []MountedNamer{{Prefix: fsPrefix, Namer: fs}}})
	if err != nil {
		t.Fatal(err)
	}
	a := in.Bind(dtab.MustParse("/svc => /#/io.l5d.fs"), dtab.MustParsePath("/svc/world")).Get()
	if a.State != watch.Ok || show(a.Value) != "/#/io.l5d.fs/world+/" {
		t.Fatalf("bound %v %v", a.State, a.Err)
	}
	err = config.Load([]byte("interpreter:\n  kind: default\n  dtab: /a=>/b\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "dtab") {
		t.Fatalf("unknown key: %v", err)
	}
}
