package etcd

import (
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
	tc, err := c.TLS.TLSConfig()
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

// ClientTLS is the `tls` block (Linkerd's client TLS keys).
type ClientTLS = tlsconf.ClientConfig
