package mesh

import (
	"os"
	"regexp"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// The namerd.yaml and linkerd.yaml examples in README.md load.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1)
	if len(blocks) != 2 {
		t.Fatalf("want 2 yaml examples in README.md, found %d", len(blocks))
	}
	var nd namerd.Config
	if err := config.Load(blocks[0][1], &nd); err != nil {
		t.Fatalf("README namerd.yaml: %v", err)
	}
	if ic, ok := nd.Interfaces[0].Value.(*InterfaceConfig); !ok || ic.Addr() != "0.0.0.0:4321" {
		t.Fatalf("README namerd.yaml interface: %#v", nd.Interfaces[0].Value)
	}
	// The router part: only its interpreter block is this package's.
	var rt struct {
		Routers []struct {
			Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
			Protocol    string                                  `yaml:"protocol"`
			Servers     []map[string]any                        `yaml:"servers"`
		} `yaml:"routers"`
	}
	if err := config.Load(blocks[1][1], &rt); err != nil {
		t.Fatalf("README linkerd.yaml: %v", err)
	}
	if ic, ok := rt.Routers[0].Interpreter.Value.(*InterpreterConfig); !ok || ic.root != "default" {
		t.Fatalf("README linkerd.yaml interpreter: %#v", rt.Routers[0].Interpreter.Value)
	}
}
