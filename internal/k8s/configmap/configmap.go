// Package configmap is the io.l5d.k8s.configMap interpreter: the default
// interpreter with a dtab read from one key of a Kubernetes ConfigMap and
// followed live (Linkerd 1.x's ConfigMapInterpreterConfig):
//
//	interpreter:
//	  kind: io.l5d.k8s.configMap
//	  experimental: true
//	  namespace: default      # default
//	  name: l5d-dtabs
//	  filename: outgoing      # the key in the ConfigMap's data
//	  host: localhost         # the API, through kubectl proxy (default)
//	  port: 8001
//
// The ConfigMap's dtab comes before the router's `dtab:` (later dentries
// win). As in Linkerd, a missing key or a missing (or deleted) ConfigMap
// is the empty dtab. Until the ConfigMap is first listed, bindings wait;
// if the API cannot be read before then, they fail with that error. A
// value that does not parse is logged and the last good dtab stays in
// force.
package configmap

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/k8s"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/naming/dtabsource"
)

// Kind is the interpreter kind.
const Kind = "io.l5d.k8s.configMap"

func init() {
	config.Register[naming.InterpreterConfig](Kind, func() naming.InterpreterConfig { return new(Config) })
}

// Config is the io.l5d.k8s.configMap interpreter block.
type Config struct {
	// Host and Port reach the API through kubectl proxy (localhost:8001).
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// InCluster authenticates with the pod's service account instead.
	InCluster bool `yaml:"inCluster"`
	// Kubeconfig is a kubeconfig file to use instead (its current context).
	Kubeconfig string `yaml:"kubeconfig"`
	// Namespace of the ConfigMap (default "default").
	Namespace string `yaml:"namespace"`
	// Name of the ConfigMap.
	Name string `yaml:"name" config:"required"`
	// Filename is the key of the ConfigMap's data holding the dtab.
	Filename string `yaml:"filename" config:"required"`
	// Experimental must be true (Linkerd gates this kind on it; the router
	// config checks it).
	Experimental bool `yaml:"experimental"`
	// Transformers rewrite every bound tree, in order (config.md §4.7).
	Transformers []config.Kinded[naming.TransformerConfig] `yaml:"transformers"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() { c.Host, c.Port, c.Namespace = "localhost", 8001, "default" }

// Validate implements config.Validator.
func (c *Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Name) == "":
		return config.FieldError("name", "must name the ConfigMap holding the dtab")
	case strings.TrimSpace(c.Filename) == "":
		return config.FieldError("filename", "must name the ConfigMap key holding the dtab")
	case c.Namespace == "":
		return config.FieldError("namespace", "must not be empty")
	case c.Host == "" && !c.InCluster && c.Kubeconfig == "":
		return config.FieldError("host", "must not be empty")
	case c.Port < 1 || c.Port > 65535:
		return config.FieldError("port", "%d is not a TCP port from 1 to 65535", c.Port)
	case c.InCluster && c.Kubeconfig != "":
		return config.FieldError("kubeconfig", "inCluster and kubeconfig are mutually exclusive")
	}
	return nil
}

// Conn is how the API is reached.
func (c *Config) Conn() k8s.Conn {
	return k8s.Conn{Host: c.Host, Port: c.Port, InCluster: c.InCluster, Kubeconfig: c.Kubeconfig}
}

// NewInterpreter implements naming.InterpreterConfig.
func (c *Config) NewInterpreter(env naming.InterpreterEnv) (naming.Interpreter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cl, err := k8s.Acquire(env.Ctx, c.Conn(), k8s.Options{}, env.Logger)
	if err != nil {
		return nil, err
	}
	live := Follow(cl, c.Namespace, c.Name, c.Filename, env)
	return dtabsource.NewFromEnv(env, c.Transformers, live, Kind, c.Namespace+"/"+c.Name+"/"+c.Filename)
}

// Follow publishes key of ConfigMap ns/name into a Live until env.Ctx is
// done.
func Follow(cl *k8s.Cluster, ns, name, key string, env naming.InterpreterEnv) *dtabsource.Live {
	what := fmt.Sprintf("ConfigMap %s/%s key %q", ns, name, key)
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	live := dtabsource.NewLive(what, logger)
	cancel := cl.WatchConfigMap(ns, name, func(cm k8s.ConfigMap) {
		switch {
		case cm.Err != nil:
			live.Fail(cm.Err)
		case !cm.Exists:
			logger.Warn("ConfigMap not found; using an empty dtab", "source", what)
			live.Set(dtab.Dtab{})
		default:
			text, ok := cm.Data[key]
			if !ok {
				logger.Warn("ConfigMap has no such key; using an empty dtab", "source", what)
			}
			_ = live.SetText(text) // a parse error is logged by live
		}
	})
	if env.Ctx != nil {
		go func() {
			<-env.Ctx.Done()
			cancel()
		}()
	}
	return live
}
