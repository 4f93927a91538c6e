package k8s

import (
	"fmt"

	"github.com/linnet-mesh/linnet/internal/config"
	kapi "github.com/linnet-mesh/linnet/internal/k8s"
	"github.com/linnet-mesh/linnet/internal/storage"
)

// Kind is the config kind of this store.
const Kind = "io.l5d.k8s"

func init() {
	config.Register[storage.Config](Kind, func() storage.Config { return new(Config) })
}

// Config is the io.l5d.k8s storage block:
//
//	storage:
//	  kind: io.l5d.k8s
//	  host: localhost     # kubectl proxy
//	  port: 8001
//	  namespace: default  # Kubernetes namespace of the DTab objects
type Config struct {
	storage.Common `yaml:",inline"`
	Host           string `yaml:"host"`
	Port           int    `yaml:"port"`
	Namespace      string `yaml:"namespace"`
	// InCluster and Kubeconfig are Linnet additions (see namer io.l5d.k8s).
	InCluster  bool   `yaml:"inCluster"`
	Kubeconfig string `yaml:"kubeconfig"`
}

// SetDefaults implements the config decoder's defaults hook.
func (c *Config) SetDefaults() { c.Host, c.Port, c.Namespace = "localhost", 8001, "default" }

// Validate checks the block.
func (c *Config) Validate() error {
	switch {
	case c.Host == "":
		return config.FieldError("host", "must not be empty")
	case c.Port < 1 || c.Port > 65535:
		return config.FieldError("port", "%d is not a port (1-65535)", c.Port)
	case c.Namespace == "":
		return config.FieldError("namespace", "must not be empty")
	case c.InCluster && c.Kubeconfig != "":
		return config.FieldError("kubeconfig", "inCluster and kubeconfig are mutually exclusive")
	}
	return nil
}

// NewStore implements storage.Config.
func (c *Config) NewStore(env storage.Env) (storage.Store, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	s, err := New(kapi.Conn{Host: c.Host, Port: c.Port, InCluster: c.InCluster, Kubeconfig: c.Kubeconfig}, c.Namespace, env.Logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	return s, nil
}
