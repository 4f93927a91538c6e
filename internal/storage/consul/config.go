package consul

import (
	"fmt"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	consulclient "github.com/linnet-mesh/linnet/internal/consul"
	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// Kind is the config kind of this store.
const Kind = "io.l5d.consul"

func init() {
	config.Register[storage.Config](Kind, func() storage.Config { return new(Config) })
}

// Config is the io.l5d.consul storage block (namerd's keys):
//
//	storage:
//	  kind: io.l5d.consul
//	  host: 127.0.0.1
//	  port: 8500
//	  pathPrefix: /namerd/dtabs
//	  token: ...
//	  datacenter: dc1
//	  readConsistencyMode: stale
//	  writeConsistencyMode: consistent
//	  backoff: {kind: jittered, minMs: 100, maxMs: 10000}
type Config struct {
	storage.Common `yaml:",inline"`
	Host           string `yaml:"host"`
	Port           int    `yaml:"port"`
	PathPrefix     string `yaml:"pathPrefix"`
	// Token is the ACL token sent with every request.
	Token string `yaml:"token"`
	// Datacenter to keep the dtabs in (default: the agent's).
	Datacenter           string `yaml:"datacenter"`
	ReadConsistencyMode  string `yaml:"readConsistencyMode"`
	WriteConsistencyMode string `yaml:"writeConsistencyMode"`
	// FailFast makes observations fail while Consul cannot be reached
	// before it first answered, instead of staying pending.
	FailFast bool `yaml:"failFast"`
	// Backoff paces retries of the watch after Consul errors (default
	// jittered 100–10000 ms).
	Backoff *backoff.Options `yaml:"backoff"`
	// TLS secures the connection to Consul.
	TLS *ClientTLS `yaml:"tls"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.Host, c.Port, c.PathPrefix = "localhost", 8500, "/namerd/dtabs"
	c.ReadConsistencyMode, c.WriteConsistencyMode = ModeDefault, ModeDefault
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	switch {
	case c.Host == "":
		return config.FieldError("host", "must not be empty")
	case c.Port < 1 || c.Port > 65535:
		return config.FieldError("port", "%d is not a TCP port from 1 to 65535", c.Port)
	case !strings.HasPrefix(c.PathPrefix, "/"):
		return config.FieldError("pathPrefix", "%q must start with /", c.PathPrefix)
	case strings.Trim(c.PathPrefix, "/") == "":
		return config.FieldError("pathPrefix", "%q must name a key folder, not the root of the KV store", c.PathPrefix)
	}
	if err := checkModeKey(c.ReadConsistencyMode); err != nil {
		return config.FieldError("readConsistencyMode", "%v", err)
	}
	if err := checkModeKey(c.WriteConsistencyMode); err != nil {
		return config.FieldError("writeConsistencyMode", "%v", err)
	}
	if c.Backoff != nil {
		if err := c.Backoff.Validate(); err != nil {
			return config.FieldError("backoff", "%v", err)
		}
	}
	return nil
}

func checkModeKey(m string) error {
	if m == "" {
		return fmt.Errorf("must not be empty (default, stale, consistent)")
	}
	return CheckMode(m)
}

// NewStore implements storage.Config.
func (c *Config) NewStore(env storage.Env) (storage.Store, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	tc, err := c.TLS.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: tls: %w", Kind, err)
	}
	cli, tr, err := consulclient.NewClient(c.Host, c.Port, c.Token, tc, 8)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	o := Options{
		Client:           cli,
		PathPrefix:       c.PathPrefix,
		Datacenter:       c.Datacenter,
		ReadConsistency:  c.ReadConsistencyMode,
		WriteConsistency: c.WriteConsistencyMode,
		FailFast:         c.FailFast,
		Logger:           env.Logger,
		OnClose:          tr.CloseIdleConnections,
	}
	if c.Backoff != nil {
		p, err := backoff.New(*c.Backoff)
		if err != nil {
			return nil, fmt.Errorf("%s: backoff: %w", Kind, err)
		}
		o.Backoff = &p
	}
	return Open(o)
}

// ClientTLS is the `tls` block (Linkerd's client TLS keys).
type ClientTLS = tlsconf.ClientConfig
