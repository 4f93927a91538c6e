package etcd

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// Kind is the config kind of this store.
const Kind = "io.l5d.etcd"

func init() {
	config.Register[storage.Config](Kind, func() storage.Config { return new(Config) })
}

// Config is the io.l5d.etcd storage block (namerd's keys):
//
//	storage:
//	  kind: io.l5d.etcd
//	  experimental: true
//	  host: etcd.default.svc.cluster.local
//	  port: 2379
//	  pathPrefix: /namerd/dtabs
type Config struct {
	storage.Common `yaml:",inline"`
	Host           string `yaml:"host"`
	Port           int    `yaml:"port"`
	PathPrefix     string `yaml:"pathPrefix"`
	// TLS secures the connection to etcd (Linkerd's client TLS keys).
	TLS *ClientTLS `yaml:"tls"`
	// RequestTimeoutMs bounds each etcd request (Linnet extension).
	RequestTimeoutMs int `yaml:"requestTimeoutMs"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.Host, c.Port, c.PathPrefix, c.RequestTimeoutMs = "localhost", 2379, "/namerd/dtabs", 5000
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	switch {
	case c.Host == "":
		return config.FieldError("host", "must not be empty")
	case c.Port < 1 || c.Port > 65535:
		return config.FieldError("port", "%d is not a TCP port", c.Port)
	case !strings.HasPrefix(c.PathPrefix, "/"):
		return config.FieldError("pathPrefix", "%q must start with /", c.PathPrefix)
	case c.RequestTimeoutMs <= 0:
		return config.FieldError("requestTimeoutMs", "must be positive")
	}
	return nil
}

// NewStore implements storage.Config.
func (c *Config) NewStore(env storage.Env) (storage.Store, error) {
	tc, err := c.TLS.config()
	if err != nil {
		return nil, fmt.Errorf("%s: tls: %w", Kind, err)
	}
	return Open(Options{
		Endpoints:      []string{net.JoinHostPort(c.Host, strconv.Itoa(c.Port))},
		PathPrefix:     c.PathPrefix,
		RequestTimeout: time.Duration(c.RequestTimeoutMs) * time.Millisecond,
		TLS:            tc,
		Logger:         env.Logger,
	})
}

// ClientTLS is the `tls` block of io.l5d.etcd.
type ClientTLS struct {
	Enabled           bool     `yaml:"enabled"`
	CommonName        string   `yaml:"commonName"`
	TrustCertsBundle  string   `yaml:"trustCertsBundle"`
	TrustCerts        []string `yaml:"trustCerts"`
	DisableValidation bool     `yaml:"disableValidation"`
	ClientAuth        *struct {
		CertPath string `yaml:"certPath" config:"required"`
		KeyPath  string `yaml:"keyPath" config:"required"`
	} `yaml:"clientAuth"`
	Protocols []string `yaml:"protocols"`
}

// SetDefaults implements config.Defaulter.
func (t *ClientTLS) SetDefaults() { t.Enabled = true }

// Validate implements config.Validator.
func (t *ClientTLS) Validate() error {
	if t.Enabled && t.CommonName == "" && !t.DisableValidation {
		return config.FieldError("commonName", "TLS to etcd needs `commonName` (the name etcd's certificate carries) unless disableValidation is true")
	}
	return nil
}

func (t *ClientTLS) config() (*tls.Config, error) {
	if t == nil || !t.Enabled {
		return nil, nil
	}
	o := tlsconf.ClientOptions{
		CommonName:        t.CommonName,
		TrustCertsBundle:  t.TrustCertsBundle,
		TrustCerts:        t.TrustCerts,
		DisableValidation: t.DisableValidation,
		Protocols:         t.Protocols,
	}
	if a := t.ClientAuth; a != nil {
		o.ClientCertPath, o.ClientKeyPath = a.CertPath, a.KeyPath
	}
	c, err := tlsconf.NewClient(o)
	if err != nil {
		return nil, err
	}
	return c.Config(nil)
}
