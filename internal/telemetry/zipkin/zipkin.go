// Package zipkin is the io.l5d.zipkin telemeter: it sends the router's
// spans to a Zipkin collector.
//
// Linkerd 1 sent spans over Scribe (Thrift) to port 9410. This version
// speaks Zipkin's v2 HTTP/JSON API instead (POST /api/v2/spans), which
// every current collector accepts (Zipkin itself on 9411, the
// OpenTelemetry Collector's zipkin receiver, Jaeger): point `host`/`port`
// at the HTTP port, e.g. `port: 9411`, or give the full `url`.
package zipkin

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/reporter"
	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/tracing"
)

// Kind is the telemeter kind this package registers.
const Kind = "io.l5d.zipkin"

func init() {
	config.Register[telemetry.TelemeterConfig](Kind, func() telemetry.TelemeterConfig { return &Config{} })
}

// Config is the io.l5d.zipkin telemeter:
//
//	telemetry:
//	- kind: io.l5d.zipkin
//	  host: zipkin-collector.default.svc.cluster.local
//	  port: 9411
//	  sampleRate: 1.0
type Config struct {
	telemetry.TelemeterCommon `yaml:",inline"`
	// Host of the collector. Default localhost.
	Host string `yaml:"host"`
	// Port of the collector's HTTP API. Default 9410 (Linkerd's Scribe
	// port, kept for compatibility; a Zipkin HTTP collector listens on 9411).
	Port int `yaml:"port"`
	// SampleRate is the fraction of new traces recorded (0..1). Default 0.001.
	SampleRate float64 `yaml:"sampleRate"`
	// URL, when set, is the full span endpoint and overrides host/port
	// (e.g. http://127.0.0.1:9411/api/v2/spans). A Linnet extension.
	URL string `yaml:"url"`
	// BatchIntervalMs is how long spans are batched before sending.
	// Default 1000. A Linnet extension.
	BatchIntervalMs int `yaml:"batchIntervalMs"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.Host, c.Port, c.SampleRate, c.BatchIntervalMs = "localhost", 9410, 0.001, 1000
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.SampleRate < 0 || c.SampleRate > 1 {
		return config.FieldError("sampleRate", "must be between 0 and 1, got %v", c.SampleRate)
	}
	if c.Port < 1 || c.Port > 65535 {
		return config.FieldError("port", "must be between 1 and 65535, got %d", c.Port)
	}
	if c.BatchIntervalMs <= 0 {
		return config.FieldError("batchIntervalMs", "must be positive, got %d", c.BatchIntervalMs)
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return config.FieldError("url", "must be an absolute http(s) URL, got %q", c.URL)
		}
	}
	return nil
}

// Endpoint returns the collector URL spans are posted to.
func (c *Config) Endpoint() string {
	if c.URL != "" {
		return c.URL
	}
	return "http://" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) + "/api/v2/spans"
}

// NewTelemeter implements telemetry.TelemeterConfig.
func (c *Config) NewTelemeter(env telemetry.TelemeterEnv) (telemetry.Telemeter, error) {
	opts := []zipkinhttp.ReporterOption{
		zipkinhttp.BatchInterval(time.Duration(c.BatchIntervalMs) * time.Millisecond),
		zipkinhttp.Timeout(5 * time.Second),
	}
	if env.Logger != nil {
		opts = append(opts, zipkinhttp.Logger(slog.NewLogLogger(env.Logger.With("telemeter", Kind).Handler(), slog.LevelWarn)))
	}
	rep := &guardedReporter{inner: zipkinhttp.NewReporter(c.Endpoint(), opts...)}
	// LocalOnly false: the traces sampled here are passed on to the next
	// hop as sampled, as Linkerd's zipkin tracer did.
	return &Telemeter{Factory: tracing.Factory{Reporter: rep, SampleRate: c.SampleRate, LocalOnly: false}, rep: rep}, nil
}

// Telemeter sends spans to the collector; it is a telemetry.TracerFactory.
type Telemeter struct {
	tracing.Factory
	rep reporter.Reporter
}

// AdminHandlers implements telemetry.Telemeter (none).
func (t *Telemeter) AdminHandlers() []telemetry.AdminHandler { return nil }

// Close flushes pending spans and stops the reporter.
func (t *Telemeter) Close() error {
	if err := t.rep.Close(); err != nil {
		return fmt.Errorf("zipkin reporter: %w", err)
	}
	return nil
}

// guardedReporter drops spans sent after Close: zipkin-go's HTTP reporter
// would block their sender forever (requests still in flight at shutdown
// finish their spans late).
type guardedReporter struct {
	mu     sync.RWMutex
	closed bool
	inner  reporter.Reporter
}

func (g *guardedReporter) Send(s model.SpanModel) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.closed {
		g.inner.Send(s)
	}
}

func (g *guardedReporter) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.inner.Close()
}

var (
	_ telemetry.Telemeter     = (*Telemeter)(nil)
	_ telemetry.TracerFactory = (*Telemeter)(nil)
)
