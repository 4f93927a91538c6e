package consul

import (
	"os"
	"slices"
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
	c := doc.Namers[0].Value.(*Config)
	if c.Host != "127.0.0.1" || !c.UseHealthCheck || !slices.Equal(c.HealthStatuses, []string{"passing", "warning"}) ||
		c.ConsistencyMode != "stale" || len(c.Weights) != 1 || c.Weights[0].Weight != 0.1 {
		t.Errorf("README example decoded as %+v", c)
	}
}
