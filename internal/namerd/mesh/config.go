package mesh

import (
	"fmt"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/namerd/client"
	"github.com/linnet-mesh/linnet/internal/namerd/remote"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// Kind is the config kind of both sides: namerd's interface and the
// router's interpreter.
const Kind = "io.l5d.mesh"

// DefaultPort is the interface's default port (on 127.0.0.1).
const DefaultPort = 4321

func init() {
	config.Register[namerd.InterfaceConfig](Kind, func() namerd.InterfaceConfig { return new(InterfaceConfig) })
	config.Register[naming.InterpreterConfig](Kind, func() naming.InterpreterConfig { return new(InterpreterConfig) })
}

// InterfaceConfig is namerd's `interfaces: [{kind: io.l5d.mesh}]` entry:
// ip (default 127.0.0.1), port (4321) and tls. Linkerd's h2AccessLog*
// keys are accepted and ignored.
type InterfaceConfig struct {
	namerd.InterfaceCommon `yaml:",inline"`
	H2AccessLog            string `yaml:"h2AccessLog"`
	H2AccessLogRollPolicy  string `yaml:"h2AccessLogRollPolicy"`
	H2AccessLogAppend      bool   `yaml:"h2AccessLogAppend"`
	H2AccessLogRotateCount int    `yaml:"h2AccessLogRotateCount"`
}

// SetDefaults implements config.Defaulter.
func (c *InterfaceConfig) SetDefaults() { c.IP, c.Port = "127.0.0.1", DefaultPort }

// NewServer implements namerd.Servable.
func (c *InterfaceConfig) NewServer(env namerd.ServeEnv) (namerd.Server, error) {
	return NewServer(ServerOptions{Ctx: env.Ctx, Store: env.Store, Interpreter: env.Interpreter, Scope: env.Scope, Logger: env.Logger}), nil
}

// NextProtos implements namerd.Servable: gRPC is HTTP/2.
func (c *InterfaceConfig) NextProtos() []string { return []string{"h2"} }

var _ namerd.Servable = (*InterfaceConfig)(nil)

// InterpreterConfig is a router's `interpreter: {kind: io.l5d.mesh}`
// block (Linkerd's keys):
//
//	interpreter:
//	  kind: io.l5d.mesh
//	  dst: /$/inet/namerd.default.svc.cluster.local/4321
//	  root: /default
//	  retry: {baseSeconds: 1, maxSeconds: 600}
type InterpreterConfig struct {
	// Dst names namerd's io.l5d.mesh interface; it is bound with the
	// router's namers and the /$/ system namers.
	Dst string `yaml:"dst" config:"required"`
	// Root is a one-element path naming the dtab namespace (/default).
	Root  string      `yaml:"root"`
	Retry RetryConfig `yaml:"retry"`
	// TLS secures the connection to namerd (the full client TLS block).
	TLS              *client.ClientTLS       `yaml:"tls"`
	FailureThreshold *FailureThresholdConfig `yaml:"failureThreshold"`
	// InitialStreamWindowSizeKB is the HTTP/2 stream flow-control window.
	InitialStreamWindowSizeKB int `yaml:"initialStreamWindowSizeKB"`
	// Transformers rewrite every bound tree namerd sends, in order.
	Transformers []config.Kinded[naming.TransformerConfig] `yaml:"transformers"`
	// Experimental is accepted for compatibility.
	Experimental bool `yaml:"experimental"`

	dst  dtab.Path
	root string
}

// RetryConfig is the stream reopening backoff: jittered, doubling from
// BaseSeconds up to MaxSeconds (Linkerd: 1 and 600).
type RetryConfig struct {
	BaseSeconds int `yaml:"baseSeconds"`
	MaxSeconds  int `yaml:"maxSeconds"`
}

// FailureThresholdConfig drives the connection's failure detector with
// HTTP/2 pings (see remote.FailureThreshold), sent at most every 10 s,
// gRPC's floor.
type FailureThresholdConfig struct {
	remote.FailureThreshold `yaml:",inline"`
}

// SetDefaults implements config.Defaulter (Linkerd: 5 s and 6 s).
func (f *FailureThresholdConfig) SetDefaults() { f.MinPeriodMs, f.CloseTimeoutMs = 5000, 6000 }

// DefaultWindowSizeKB is initialStreamWindowSizeKB's default
// (spec/config.md §4.6).
const DefaultWindowSizeKB = 1024

// SetDefaults implements config.Defaulter.
func (c *InterpreterConfig) SetDefaults() {
	c.Root = "/default"
	c.Retry = RetryConfig{BaseSeconds: 1, MaxSeconds: 600}
	c.InitialStreamWindowSizeKB = DefaultWindowSizeKB
}

// Validate implements config.Validator.
func (c *InterpreterConfig) Validate() error {
	p, err := remote.ParseDst(c.Dst, "/$/inet/127.0.0.1/4321")
	if err != nil {
		return err
	}
	root, err := dtab.ParsePath(c.Root)
	if err != nil {
		return config.FieldError("root", "invalid path %q: %v", c.Root, err)
	}
	if len(root) != 1 {
		return config.FieldError("root", "may only contain a single path element (the namerd namespace, e.g. /default), got %q", c.Root)
	}
	if c.Retry.BaseSeconds <= 0 || c.Retry.BaseSeconds > c.Retry.MaxSeconds {
		return config.FieldError("retry", "need 0 < baseSeconds <= maxSeconds, got %d and %d", c.Retry.BaseSeconds, c.Retry.MaxSeconds)
	}
	// HTTP/2 windows are 31-bit; gRPC ignores windows under 64 KB.
	if c.InitialStreamWindowSizeKB < 64 || c.InitialStreamWindowSizeKB > (1<<31-1)/1024 {
		return config.FieldError("initialStreamWindowSizeKB", "must be between 64 and %d, got %d", (1<<31-1)/1024, c.InitialStreamWindowSizeKB)
	}
	c.dst, c.root = p, root[0]
	return nil
}

// NewInterpreter implements naming.InterpreterConfig.
func (c *InterpreterConfig) NewInterpreter(env naming.InterpreterEnv) (naming.Interpreter, error) {
	if c.dst == nil {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	ctx, log := remote.Env(env)
	tc, err := c.TLS.WatchedTLSConfig(ctx, log, "namerd", "h2")
	if err != nil {
		return nil, fmt.Errorf("interpreter.tls: %w", err)
	}
	trans, err := naming.NewTransformers(env.Env, c.Transformers)
	if err != nil {
		return nil, err
	}
	ft := c.FailureThreshold
	if ft == nil {
		ft = new(FailureThresholdConfig)
		ft.SetDefaults()
	}
	return NewInterpreter(ctx, InterpreterOptions{
		Namespace:        c.root,
		Dial:             remote.DialDst(ctx, env.Namers, c.dst),
		Dst:              c.Dst,
		TLS:              tc,
		RetryBase:        time.Duration(c.Retry.BaseSeconds) * time.Second,
		RetryMax:         time.Duration(c.Retry.MaxSeconds) * time.Second,
		PingEvery:        ft.PingEvery(),
		PingTimeout:      ft.PingTimeout(),
		StreamWindowSize: int32(c.InitialStreamWindowSizeKB) * 1024,
		Transformers:     trans,
		Scope:            env.Scope.Scope("interpreter", Kind),
		Logger:           log.With("interpreter", Kind, "root", "/"+c.root),
	}), nil
}
