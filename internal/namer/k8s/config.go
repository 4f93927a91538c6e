package k8s

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	kapi "github.com/linnet-mesh/linnet/internal/k8s"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// Config kinds.
const (
	KindK8s       = "io.l5d.k8s"
	KindNS        = "io.l5d.k8s.ns"
	KindExternal  = "io.l5d.k8s.external"
	KindDaemonSet = "io.l5d.k8s.daemonset"
	KindLocalNode = "io.l5d.k8s.localnode"
)

func init() {
	config.Register[naming.NamerConfig](KindK8s, func() naming.NamerConfig { return &Config{kind: KindK8s} })
	config.Register[naming.NamerConfig](KindNS, func() naming.NamerConfig { return &NSConfig{Config: Config{kind: KindNS}} })
	config.Register[naming.NamerConfig](KindExternal, func() naming.NamerConfig { return &Config{kind: KindExternal} })
	config.Register[naming.TransformerConfig](KindDaemonSet, func() naming.TransformerConfig { return &DaemonSetConfig{} })
	config.Register[naming.TransformerConfig](KindLocalNode, func() naming.TransformerConfig { return &LocalNodeConfig{} })
}

// Conn is how a Kubernetes plug-in reaches the API: by default plain HTTP
// to `kubectl proxy` on host:port (Linkerd 1's only mode). inCluster and
// kubeconfig are Linnet additions.
type Conn struct {
	// InCluster authenticates with the pod's service account.
	InCluster bool `yaml:"inCluster"`
	// Kubeconfig is a kubeconfig file to use (its current context).
	Kubeconfig string `yaml:"kubeconfig"`
	// EndpointsAPI forces "endpointslices" or "endpoints"; by default
	// EndpointSlices are used when the API server serves them.
	EndpointsAPI string `yaml:"endpointsApi"`
}

func (c *Conn) validate() error {
	if c.InCluster && c.Kubeconfig != "" {
		return config.FieldError("kubeconfig", "inCluster and kubeconfig are mutually exclusive")
	}
	switch kapi.EndpointsAPI(c.EndpointsAPI) {
	case kapi.EndpointsAuto, kapi.EndpointSlices, kapi.EndpointsLegacy:
	default:
		return config.FieldError("endpointsApi", "%q is not endpointslices or endpoints", c.EndpointsAPI)
	}
	return nil
}

func (c *Conn) conn(host string, port int) kapi.Conn {
	return kapi.Conn{Host: host, Port: port, InCluster: c.InCluster, Kubeconfig: c.Kubeconfig}
}

func validPort(field string, p int) error {
	if p < 1 || p > 65535 {
		return config.FieldError(field, "%d is not a port (1-65535)", p)
	}
	return nil
}

// Config is the io.l5d.k8s and io.l5d.k8s.external namer block:
//
//	namers:
//	- kind: io.l5d.k8s
//	  host: localhost      # kubectl proxy
//	  port: 8001
//	  labelSelector: version
type Config struct {
	naming.NamerCommon `yaml:",inline"`
	Conn               `yaml:",inline"`
	Host               string `yaml:"host"`
	Port               int    `yaml:"port"`
	// LabelSelector names a label; names then carry its value as an extra
	// segment after the service.
	LabelSelector string `yaml:"labelSelector"`

	kind string
}

// SetDefaults implements the config decoder's defaults hook.
func (c *Config) SetDefaults() { c.Host, c.Port = "localhost", 8001 }

// Validate checks the block.
func (c *Config) Validate() error {
	if c.Host == "" {
		return config.FieldError("host", "must not be empty")
	}
	if err := validPort("port", c.Port); err != nil {
		return err
	}
	if strings.ContainsAny(c.LabelSelector, "=,! ") {
		return config.FieldError("labelSelector", "%q must be a label key (the value comes from the name)", c.LabelSelector)
	}
	if c.kind == KindExternal && !c.Experimental {
		return config.FieldError("experimental", "%s requires experimental: true", KindExternal)
	}
	return c.Conn.validate()
}

// mountPrefix is /#/<prefix>, the prefix defaulting to the kind.
func mountPrefix(prefix, kind string) (dtab.Path, error) {
	if prefix == "" {
		prefix = kind
	}
	if !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	p, err := dtab.ParsePath(prefix)
	if err != nil {
		return nil, fmt.Errorf("prefix %q: %w", prefix, err)
	}
	return dtab.Path{"#"}.Concat(p), nil
}

// NewNamer implements naming.NamerConfig.
func (c *Config) NewNamer(env naming.Env) (naming.Namer, error) {
	m := modeK8s
	if c.kind == KindExternal {
		m = modeExternal
	}
	return c.newNamer(env, m, "")
}

func (c *Config) newNamer(env naming.Env, m mode, ns string) (*Namer, error) {
	kind := c.kind
	if kind == "" {
		kind = KindK8s
	}
	prefix, err := mountPrefix(c.Prefix, kind)
	if err != nil {
		return nil, err
	}
	cl, err := kapi.Acquire(env.Ctx, c.conn(c.Host, c.Port), kapi.Options{Endpoints: kapi.EndpointsAPI(c.EndpointsAPI)}, env.Logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	logger := env.Logger
	if logger == nil {
		logger = cl.Logger()
	}
	n := newNamer(m, prefix, c.LabelSelector, ns, cl, logger)
	n.instrument(env.Scope)
	return n, nil
}

// NSConfig is the io.l5d.k8s.ns namer block: names are /<port>/<svc> in
// the namespace read from an environment variable.
type NSConfig struct {
	Config `yaml:",inline"`
	// EnvVar names the variable holding the namespace (POD_NAMESPACE).
	EnvVar string `yaml:"envVar"`

	getenv func(string) string // for tests; os.Getenv when nil
}

// SetDefaults implements the config decoder's defaults hook.
func (c *NSConfig) SetDefaults() { c.Config.SetDefaults(); c.EnvVar = "POD_NAMESPACE" }

// Validate checks the block.
func (c *NSConfig) Validate() error {
	if c.EnvVar == "" {
		return config.FieldError("envVar", "must not be empty")
	}
	return c.Config.Validate()
}

// NewNamer implements naming.NamerConfig.
func (c *NSConfig) NewNamer(env naming.Env) (naming.Namer, error) {
	getenv := c.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	ns := strings.ToLower(getenv(c.EnvVar))
	if ns == "" {
		return nil, fmt.Errorf("%s: environment variable %s (envVar) is not set", KindNS, c.EnvVar)
	}
	return c.newNamer(env, modeNS, ns)
}

// DaemonSetConfig is the io.l5d.k8s.daemonset transformer block.
type DaemonSetConfig struct {
	Conn        `yaml:",inline"`
	Namespace   string `yaml:"namespace"`
	Service     string `yaml:"service"`
	Port        string `yaml:"port"` // the DaemonSet Service's port name
	K8sHost     string `yaml:"k8sHost"`
	K8sPort     int    `yaml:"k8sPort"`
	HostNetwork bool   `yaml:"hostNetwork"`
}

// SetDefaults implements the config decoder's defaults hook.
func (c *DaemonSetConfig) SetDefaults() { c.K8sHost, c.K8sPort = "localhost", 8001 }

// Validate checks the block.
func (c *DaemonSetConfig) Validate() error {
	for _, f := range []struct{ name, v string }{{"namespace", c.Namespace}, {"service", c.Service}, {"port", c.Port}} {
		if f.v == "" {
			return config.FieldError(f.name, "is required")
		}
	}
	if c.K8sHost == "" {
		return config.FieldError("k8sHost", "must not be empty")
	}
	if err := validPort("k8sPort", c.K8sPort); err != nil {
		return err
	}
	return c.Conn.validate()
}

// NewTransformer implements naming.TransformerConfig.
func (c *DaemonSetConfig) NewTransformer(env naming.Env) (naming.Transformer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", KindDaemonSet, err)
	}
	cl, err := kapi.Acquire(env.Ctx, c.conn(c.K8sHost, c.K8sPort), kapi.Options{Endpoints: kapi.EndpointsAPI(c.EndpointsAPI)}, env.Logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KindDaemonSet, err)
	}
	n := newNamer(modeK8s, dtab.Path{"#", KindK8s}, "", "", cl, cl.Logger())
	return &DaemonSetTransformer{
		marker:      dtab.Path{"%", KindDaemonSet, c.Namespace, c.Port, c.Service},
		ds:          n.watchAddr(c.Namespace, c.Port, c.Service),
		hostNetwork: c.HostNetwork,
	}, nil
}

// LocalNodeConfig is the io.l5d.k8s.localnode transformer block. It reads
// POD_IP (or, with hostNetwork, NODE_NAME) from the environment.
type LocalNodeConfig struct {
	HostNetwork bool `yaml:"hostNetwork"`

	getenv func(string) string // for tests; os.Getenv when nil
}

// NewTransformer implements naming.TransformerConfig.
func (c *LocalNodeConfig) NewTransformer(naming.Env) (naming.Transformer, error) {
	getenv := c.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if c.HostNetwork {
		node := getenv("NODE_NAME")
		if node == "" {
			return nil, errors.New(KindLocalNode + ": hostNetwork needs the environment variable NODE_NAME (the pod's spec.nodeName)")
		}
		return &LocalNodeTransformer{marker: dtab.Path{"%", KindLocalNode, node}, local: node, hostNetwork: true}, nil
	}
	ip := getenv("POD_IP")
	if ip == "" {
		return nil, errors.New(KindLocalNode + ": the environment variable POD_IP (the pod's status.podIP) is not set")
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return nil, fmt.Errorf("%s: POD_IP=%q is not an IP address", KindLocalNode, ip)
	}
	return &LocalNodeTransformer{marker: dtab.Path{"%", KindLocalNode, ip}, local: ip}, nil
}
