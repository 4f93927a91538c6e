// Package tracelog is the io.l5d.tracelog telemeter: every sampled trace
// span the routers record is written to the process's log, one structured
// line per finished span.
//
//	telemetry:
//	- kind: io.l5d.tracelog
//	  sampleRate: 0.2   # default 1.0
//	  level: DEBUG      # default INFO
//
// Linkerd 1 logged each trace record (annotation) as it happened; this
// version logs each span once it is finished, with its annotations, which
// carries the same facts in fewer lines. The spans are those of
// io.l5d.zipkin (a server span per request and a client span per attempt,
// see internal/telemetry/tracing) and sampling works the same way: a new
// trace is sampled with probability sampleRate, an upstream decision
// (l5d-sample, a sampled l5d-ctx-trace or x-b3-sampled) is followed.
//
// As in Linkerd, whose tracelog tracer answered "unknown" to Finagle's
// sampleTrace, the decision stays local: the traces this telemeter keeps
// are not passed on to the next hop as sampled. With io.l5d.tracelog
// alone the outbound l5d-ctx-trace (or B3 headers) carries no sampling
// decision unless one came from upstream, so the next hop decides by
// itself; next to io.l5d.zipkin, the next hop is told "sampled" for the
// traces io.l5d.zipkin keeps and "unknown" for the others.
//
// The line's level is `level`; the process's -log.level still filters it,
// so `level: DEBUG` logs nothing unless the process logs DEBUG. The query
// string of http.uri is left out of the line: it may carry credentials,
// and logs are read more widely than traces. With io.l5d.zipkin (or
// another tracing telemeter) in the same process, each span is recorded
// once and reaches both, with the same ids; each keeps the traces its own
// sampleRate samples, and all follow an upstream decision (see
// internal/telemetry/tracing).
package tracelog

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/openzipkin/zipkin-go/model"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/logging"
	"github.com/linnet-mesh/linnet/internal/telemetry/tracing"
)

// Kind is the telemeter kind this package registers.
const Kind = "io.l5d.tracelog"

func init() {
	config.Register[telemetry.TelemeterConfig](Kind, func() telemetry.TelemeterConfig { return &Config{} })
}

// Config is the io.l5d.tracelog telemeter. (Linkerd's documentation also
// lists `host`, which its parser refuses; so does this one.)
type Config struct {
	telemetry.TelemeterCommon `yaml:",inline"`
	// SampleRate is the fraction of new traces recorded (0..1). Default 1.0.
	SampleRate float64 `yaml:"sampleRate"`
	// Level is the level of the log lines, a Linkerd or slog level name
	// (TRACE, DEBUG, INFO, WARNING, ERROR, ...). Default INFO.
	Level string `yaml:"level"`

	level slog.Level
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() { c.SampleRate, c.Level = 1.0, "INFO" }

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if !(c.SampleRate >= 0 && c.SampleRate <= 1) {
		return config.FieldError("sampleRate", "must be between 0 and 1, got %v", c.SampleRate)
	}
	l, err := logging.ParseLevel(c.Level)
	if err != nil {
		return config.FieldError("level", "%v", err)
	}
	c.level = l
	return nil
}

// NewTelemeter implements telemetry.TelemeterConfig.
func (c *Config) NewTelemeter(env telemetry.TelemeterEnv) (telemetry.Telemeter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := &Reporter{log: log, level: c.level}
	// LocalOnly: what the log keeps is not what the next hop samples.
	return &Telemeter{Factory: tracing.Factory{Reporter: rep, SampleRate: c.SampleRate, LocalOnly: true}, rep: rep}, nil
}

// Telemeter logs spans; it is a telemetry.TracerFactory.
type Telemeter struct {
	tracing.Factory
	rep *Reporter
}

// AdminHandlers implements telemetry.Telemeter (none).
func (t *Telemeter) AdminHandlers() []telemetry.AdminHandler { return nil }

// Close stops logging (spans of requests still in flight are dropped).
func (t *Telemeter) Close() error { return t.rep.Close() }

// Reporter is a zipkin-go reporter.Reporter that logs each span.
type Reporter struct {
	log    *slog.Logger
	level  slog.Level
	closed atomic.Bool
}

// NewReporter returns a Reporter logging to log at level.
func NewReporter(log *slog.Logger, level slog.Level) *Reporter {
	return &Reporter{log: log, level: level}
}

// Send logs s as one line: "trace span" with traceId, spanId, parentId
// (when there is one), name, kind, duration, remote (the peer's ip:port,
// when known), shared, annotations and the tags as a group.
func (r *Reporter) Send(s model.SpanModel) {
	ctx := context.Background()
	if r.closed.Load() || !r.log.Enabled(ctx, r.level) {
		return
	}
	attrs := make([]slog.Attr, 0, 11)
	attrs = append(attrs, slog.String("traceId", s.TraceID.String()), slog.String("spanId", s.ID.String()))
	if s.ParentID != nil {
		attrs = append(attrs, slog.String("parentId", s.ParentID.String()))
	}
	attrs = append(attrs,
		slog.String("name", s.Name),
		slog.String("kind", string(s.Kind)),
		slog.Duration("duration", s.Duration))
	if ep := s.RemoteEndpoint; ep != nil {
		if hp := endpointString(ep); hp != "" {
			attrs = append(attrs, slog.String("remote", hp))
		}
	}
	if s.Shared {
		attrs = append(attrs, slog.Bool("shared", true))
	}
	if s.Debug {
		attrs = append(attrs, slog.Bool("debug", true))
	}
	if len(s.Annotations) > 0 {
		vs := make([]string, len(s.Annotations))
		for i, a := range s.Annotations {
			vs[i] = a.Value
		}
		attrs = append(attrs, slog.String("annotations", strings.Join(vs, ",")))
	}
	if len(s.Tags) > 0 {
		keys := make([]string, 0, len(s.Tags))
		for k := range s.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		tags := make([]any, 0, len(keys))
		for _, k := range keys {
			v := s.Tags[k]
			if k == telemetry.TagHTTPURI {
				v = withoutQuery(v)
			}
			tags = append(tags, slog.String(k, v))
		}
		attrs = append(attrs, slog.Group("tags", tags...))
	}
	r.log.LogAttrs(ctx, r.level, "trace span", attrs...)
}

// Close implements reporter.Reporter: later spans are not logged.
func (r *Reporter) Close() error {
	r.closed.Store(true)
	return nil
}

// withoutQuery drops the query string of a request URI.
func withoutQuery(uri string) string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i] + "?…"
	}
	return uri
}

// endpointString is the endpoint's "ip:port" ("ip" without a port).
func endpointString(ep *model.Endpoint) string {
	ip := ep.IPv4
	if ip == nil {
		ip = ep.IPv6
	}
	switch {
	case ip == nil:
		return ""
	case ep.Port == 0:
		return ip.String()
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(ep.Port)))
}

var (
	_ telemetry.Telemeter     = (*Telemeter)(nil)
	_ telemetry.TracerFactory = (*Telemeter)(nil)
)
