package prometheus

import (
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Kind is the telemeter kind this package registers.
const Kind = "io.l5d.prometheus"

// DefaultPath is where the metrics are served on the admin server.
const DefaultPath = "/admin/metrics/prometheus"

func init() {
	config.Register[telemetry.TelemeterConfig](Kind, func() telemetry.TelemeterConfig { return &Config{} })
}

// Config is the io.l5d.prometheus telemeter:
//
//	telemetry:
//	- kind: io.l5d.prometheus
//	  path: /admin/metrics/prometheus
//	  prefix: linkerd_
type Config struct {
	telemetry.TelemeterCommon `yaml:",inline"`
	// Path is the admin path serving the metrics.
	Path string `yaml:"path"`
	// Prefix is prepended to every metric name (e.g. "linkerd_"); it
	// must itself be a valid start of a Prometheus name.
	Prefix string `yaml:"prefix"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() { c.Path = DefaultPath }

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if !strings.HasPrefix(c.Path, "/") {
		return config.FieldError("path", "must start with '/', got %q", c.Path)
	}
	if c.Prefix != "" && sanitize(c.Prefix) != c.Prefix {
		return config.FieldError("prefix", "%q is not a valid metric name prefix (letters, digits, '_' and ':', not starting with a digit)", c.Prefix)
	}
	return nil
}

// NewTelemeter implements telemetry.TelemeterConfig.
func (c *Config) NewTelemeter(env telemetry.TelemeterEnv) (telemetry.Telemeter, error) {
	return &telemeter{handlers: []telemetry.AdminHandler{{
		Path:    c.Path,
		Handler: Handler(env.Registry, Options{Prefix: c.Prefix, Runtime: true}),
	}}}, nil
}

type telemeter struct{ handlers []telemetry.AdminHandler }

func (t *telemeter) AdminHandlers() []telemetry.AdminHandler { return t.handlers }
func (t *telemeter) Close() error                            { return nil }
