package fs

import (
	"os"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// TestReadmeExample loads the namer block of the README's example.
func TestReadmeExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "```yaml\n") + len("```yaml\n")
	end := strings.Index(text[start:], "\nrouters:")
	if start < len("```yaml\n") || end < 0 {
		t.Fatal("README has no yaml example with a namers block")
	}
	var doc struct {
		Namers []config.Kinded[naming.NamerConfig] `yaml:"namers"`
	}
	if err := config.Load([]byte(text[start:start+end]), &doc); err != nil {
		t.Fatal(err)
	}
	if c := doc.Namers[0].Value.(*Config); c.RootDir != "disco" {
		t.Errorf("rootDir = %q", c.RootDir)
	}
	// The address file of the example parses as described.
	fileStart := strings.Index(text, "```\n#") + len("```\n")
	fileEnd := strings.Index(text[fileStart:], "```")
	dir := t.TempDir()
	write(t, dir+"/hello", text[fileStart:fileStart+fileEnd])
	n := newNamer(t, dir)
	if got := describe(n.Lookup(p("/hello")).Get()); got != "/#/io.l5d.fs/hello / [10.0.0.7:8888*0.5 127.0.0.1:8888]" {
		t.Errorf("example file: %s", got)
	}
}
