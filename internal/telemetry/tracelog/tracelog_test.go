package tracelog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/logging"
)

// logBuffer collects JSON log lines from concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// spans returns the decoded "trace span" lines so far.
func (b *logBuffer) spans(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "trace span" {
			out = append(out, m)
		}
	}
	return out
}

func newLog(level slog.Level) (*logBuffer, *slog.Logger) {
	b := &logBuffer{}
	return b, slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: level}))
}

func decode(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	var d struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	if err := config.Load([]byte(yaml), &d); err != nil {
		return nil, err
	}
	return d.Telemetry[0].Value.(*Config), nil
}

func TestConfig(t *testing.T) {
	c, err := decode(t, "telemetry:\n- kind: io.l5d.tracelog\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.SampleRate != 1.0 || c.Level != "INFO" || c.level != slog.LevelInfo {
		t.Errorf("defaults = %v %q %v; want 1.0, INFO", c.SampleRate, c.Level, c.level)
	}
	c, err = decode(t, "telemetry:\n- {kind: io.l5d.tracelog, sampleRate: 0.25, level: trace, experimental: true}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.SampleRate != 0.25 || c.level != logging.LevelTrace {
		t.Errorf("got %v %v; want 0.25, TRACE", c.SampleRate, c.level)
	}
	for yaml, want := range map[string]string{
		"telemetry:\n- {kind: io.l5d.tracelog, sampleRate: 1.5}\n":  "telemetry[0].sampleRate: must be between 0 and 1, got 1.5",
		"telemetry:\n- {kind: io.l5d.tracelog, sampleRate: -0.1}\n": "telemetry[0].sampleRate: must be between 0 and 1",
		"telemetry:\n- {kind: io.l5d.tracelog, level: LOUD}\n":      `telemetry[0].level: unknown log level "LOUD"`,
		"telemetry:\n- {kind: io.l5d.tracelog, host: localhost}\n":  "host",
		"telemetry:\n- {kind: io.l5d.tracelog, sampleRate: lots}\n": "telemetry[0].sampleRate",
	} {
		_, err := decode(t, yaml)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error = %v; want it to mention %q", yaml, err, want)
		}
	}
}

func TestReporterLine(t *testing.T) {
	buf, log := newLog(slog.LevelDebug)
	r := NewReporter(log, slog.LevelDebug)
	parent := model.ID(0x22)
	yes := true
	r.Send(model.SpanModel{
		SpanContext:    model.SpanContext{TraceID: model.TraceID{Low: 0xabc}, ID: 0x33, ParentID: &parent, Sampled: &yes},
		Name:           "get",
		Kind:           model.Client,
		Duration:       1500 * time.Microsecond,
		RemoteEndpoint: &model.Endpoint{IPv4: net.ParseIP("127.0.0.2").To4(), Port: 8080},
		Annotations:    []model.Annotation{{Timestamp: time.Now(), Value: telemetry.AnnotationSuccess}},
		Tags: map[string]string{
			telemetry.TagHTTPURI:    "/login?token=s3cret",
			telemetry.TagHTTPStatus: "200",
			telemetry.TagDstID:      "/#/io.l5d.fs/web",
		},
	})
	r.Send(model.SpanModel{SpanContext: model.SpanContext{TraceID: model.TraceID{Low: 0xabc}, ID: 0x22}, Name: "get", Kind: model.Server})
	lines := buf.spans(t)
	if len(lines) != 2 {
		t.Fatalf("%d lines; want 2", len(lines))
	}
	l := lines[0]
	tags, _ := l["tags"].(map[string]any)
	for k, want := range map[string]any{
		"level": "DEBUG", "traceId": "0000000000000abc", "spanId": "0000000000000033", "parentId": "0000000000000022",
		"name": "get", "kind": "CLIENT", "duration": float64(1500 * time.Microsecond), "remote": "127.0.0.2:8080",
		"annotations": "l5d.success",
	} {
		if l[k] != want {
			t.Errorf("%s = %v; want %v (line %v)", k, l[k], want, l)
		}
	}
	if tags["http.uri"] != "/login?…" || tags["http.rsp.status"] != "200" || tags["dst.id"] != "/#/io.l5d.fs/web" {
		t.Errorf("tags = %v; want the tags, http.uri without its query", tags)
	}
	if strings.Contains(buf.buf.String(), "s3cret") {
		t.Error("the query string was logged")
	}
	if _, ok := lines[1]["parentId"]; ok || lines[1]["kind"] != "SERVER" {
		t.Errorf("root span line = %v; want no parentId", lines[1])
	}

	// The process's level still filters; nothing is logged after Close.
	buf, log = newLog(slog.LevelInfo)
	NewReporter(log, slog.LevelDebug).Send(model.SpanModel{Name: "x"})
	r = NewReporter(log, slog.LevelWarn)
	r.Send(model.SpanModel{Name: "y"})
	r.Close()
	r.Send(model.SpanModel{Name: "z"})
	if lines := buf.spans(t); len(lines) != 1 || lines[0]["name"] != "y" || lines[0]["level"] != "WARN" {
		t.Errorf("lines = %v; want only y, at WARN", lines)
	}
}
