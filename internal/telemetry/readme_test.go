package telemetry_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	_ "github.com/linnet-mesh/linnet/internal/telemetry/influxdb"
	_ "github.com/linnet-mesh/linnet/internal/telemetry/prometheus"
	_ "github.com/linnet-mesh/linnet/internal/telemetry/recent"
	_ "github.com/linnet-mesh/linnet/internal/telemetry/zipkin"
)

// Every YAML example of README.md loads.
func TestReadmeExamplesLoad(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1)
	if len(blocks) != 4 {
		t.Fatalf("found %d yaml examples, want 4", len(blocks))
	}
	for _, blk := range blocks {
		var d struct {
			Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
		}
		if err := config.Load(blk[1], &d); err != nil {
			t.Errorf("%s\n%v", blk[1], err)
			continue
		}
		tm, err := d.Telemetry[0].Value.NewTelemeter(telemetry.TelemeterEnv{Registry: telemetry.NewRegistry()})
		if err != nil {
			t.Errorf("%s: %v", d.Telemetry[0].Kind, err)
			continue
		}
		if err := tm.Close(); err != nil {
			t.Errorf("%s: close: %v", d.Telemetry[0].Kind, err)
		}
	}
}

// A mistyped kind is refused with the known kinds listed.
// (io.l5d.statsd, once listed here as unsupported, is
// internal/telemetry/statsd.)
func TestUnsupportedTelemeters(t *testing.T) {
	var d struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	err := config.Load([]byte("telemetry:\n- kind: io.l5d.prometheos\n"), &d)
	if err == nil || !strings.Contains(err.Error(), "io.l5d.prometheus") {
		t.Errorf("typo: %v", err)
	}
}

func TestTelemetersLookups(t *testing.T) {
	var d struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	text := "telemetry:\n- kind: io.l5d.prometheus\n- kind: io.l5d.recentRequests\n  sampleRate: 1\n- kind: io.l5d.zipkin\n  sampleRate: 1\n"
	if err := config.Load([]byte(text), &d); err != nil {
		t.Fatal(err)
	}
	var ts telemetry.Telemeters
	for _, k := range d.Telemetry {
		tm, err := k.Value.NewTelemeter(telemetry.TelemeterEnv{Registry: telemetry.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tm)
	}
	var paths []string
	for _, h := range ts.AdminHandlers() {
		paths = append(paths, h.Path)
	}
	if strings.Join(paths, " ") != "/admin/metrics/prometheus /requests /requests.json" {
		t.Errorf("admin paths %v", paths)
	}
	if ts.TracerFactory() == nil || ts.Recorder() == nil {
		t.Error("zipkin or recentRequests not found")
	}
	if ts[:1].TracerFactory() != nil || ts[:1].Recorder() != nil {
		t.Error("prometheus alone claims tracing or recording")
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
}
