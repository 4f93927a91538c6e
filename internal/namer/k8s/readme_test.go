package k8s

import (
	"os"
	"regexp"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// TestREADMEExamples loads every YAML example of README.md.
func TestREADMEExamples(t *testing.T) {
	text, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(text, -1)
	if len(blocks) != 3 {
		t.Fatalf("%d yaml blocks, want 3", len(blocks))
	}
	for i, b := range blocks {
		var doc struct {
			Namers      []config.Kinded[naming.NamerConfig]     `yaml:"namers"`
			Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
		}
		if err := config.Load(b[1], &doc); err != nil {
			t.Errorf("example %d: %v", i+1, err)
		}
	}
}
