package namerd

import (
	"os"
	"regexp"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	_ "github.com/linnet-mesh/linnet/internal/storage/file"
)

// The namerd.yaml example in README.md loads.
func TestREADMEExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1)
	if len(blocks) == 0 {
		t.Fatal("no yaml example in README.md")
	}
	var cfg Config
	if err := config.Load(blocks[0][1], &cfg); err != nil {
		t.Fatalf("README namerd.yaml: %v", err)
	}
	if cfg.Storage.Kind != "io.linnet.file" || len(cfg.Namers) != 1 {
		t.Fatalf("README namerd.yaml decoded to %+v", cfg)
	}
}
