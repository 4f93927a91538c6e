package serversets

import (
	"fmt"
	"strings"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/zk"
)

// The namer kinds.
const (
	Kind       = "io.l5d.serversets"
	LeaderKind = "io.l5d.zkLeader"
)

func init() {
	config.Register[naming.NamerConfig](Kind, func() naming.NamerConfig { return &Config{kind: Kind} })
	config.Register[naming.NamerConfig](LeaderKind, func() naming.NamerConfig { return &Config{kind: LeaderKind} })
}

// Config is the io.l5d.serversets (and io.l5d.zkLeader) namer block:
//
//	namers:
//	- kind: io.l5d.serversets
//	  zkAddrs:
//	  - host: zk1.example.com
//	    port: 2181
//	  sessionTimeoutMs: 10000   # Linnet extension
type Config struct {
	naming.NamerCommon `yaml:",inline"`
	// ZkAddrs are the servers of the ensemble (required).
	ZkAddrs []zk.HostPort `yaml:"zkAddrs"`
	// SessionTimeoutMs is the ZooKeeper session timeout (Linnet extension;
	// Linkerd uses 10 s).
	SessionTimeoutMs int `yaml:"sessionTimeoutMs"`

	kind string
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() { c.SessionTimeoutMs = 10000 }

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if err := zk.ValidateAddrs("zkAddrs", c.ZkAddrs); err != nil {
		return err
	}
	if c.SessionTimeoutMs < 1000 || c.SessionTimeoutMs > 600000 {
		return config.FieldError("sessionTimeoutMs", "%d is not a session timeout from 1000 to 600000 ms", c.SessionTimeoutMs)
	}
	if _, err := mountPrefix(c.Prefix, c.kindOr()); err != nil {
		return config.FieldError("prefix", "%v", err)
	}
	return nil
}

func (c *Config) kindOr() string {
	if c.kind == "" {
		return Kind
	}
	return c.kind
}

// NewNamer implements naming.NamerConfig.
func (c *Config) NewNamer(env naming.Env) (naming.Namer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", c.kindOr(), err)
	}
	p, _ := mountPrefix(c.Prefix, c.kindOr())
	return New(env, Options{
		Kind:           c.kindOr(),
		Prefix:         p,
		Servers:        zk.Servers(c.ZkAddrs),
		SessionTimeout: time.Duration(c.SessionTimeoutMs) * time.Millisecond,
	})
}

// mountPrefix returns /#/<prefix>, the prefix defaulting to the kind.
func mountPrefix(prefix, kind string) (dtab.Path, error) {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		prefix = kind
	}
	p, err := dtab.ParsePath("/" + prefix)
	if err != nil {
		return nil, err
	}
	return dtab.Path{"#"}.Concat(p), nil
}
