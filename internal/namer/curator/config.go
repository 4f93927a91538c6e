package curator

import (
	"fmt"
	"strings"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/zk"
)

// Kind is the namer kind.
const Kind = "io.l5d.curator"

func init() {
	config.Register[naming.NamerConfig](Kind, func() naming.NamerConfig { return new(Config) })
}

// Config is the io.l5d.curator namer block (see the package doc).
type Config struct {
	naming.NamerCommon `yaml:",inline"`
	// ZkAddrs are the servers of the ensemble (required).
	ZkAddrs []zk.HostPort `yaml:"zkAddrs"`
	// BasePath is the znode under which Curator registers services
	// (Curator's ServiceDiscoveryBuilder.basePath). Default /.
	BasePath string `yaml:"basePath"`
	// SessionTimeoutMs is the ZooKeeper session timeout (Linnet extension).
	SessionTimeoutMs int `yaml:"sessionTimeoutMs"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() { c.BasePath, c.SessionTimeoutMs = "/", 10000 }

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if !c.Experimental {
		return config.FieldError("experimental", "namer %s is experimental and requires `experimental: true` (as in Linkerd)", Kind)
	}
	if err := zk.ValidateAddrs("zkAddrs", c.ZkAddrs); err != nil {
		return err
	}
	if c.BasePath != "/" {
		if err := zk.ValidatePath(strings.TrimSuffix(c.BasePath, "/")); err != nil {
			return config.FieldError("basePath", "%v", err)
		}
	}
	if c.SessionTimeoutMs < 1000 || c.SessionTimeoutMs > 600000 {
		return config.FieldError("sessionTimeoutMs", "%d is not a session timeout from 1000 to 600000 ms", c.SessionTimeoutMs)
	}
	if _, err := mountPrefix(c.Prefix); err != nil {
		return config.FieldError("prefix", "%v", err)
	}
	return nil
}

// NewNamer implements naming.NamerConfig.
func (c *Config) NewNamer(env naming.Env) (naming.Namer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	p, _ := mountPrefix(c.Prefix)
	return New(env, Options{
		Prefix:         p,
		BasePath:       c.BasePath,
		Servers:        zk.Servers(c.ZkAddrs),
		SessionTimeout: time.Duration(c.SessionTimeoutMs) * time.Millisecond,
	})
}

// mountPrefix returns /#/<prefix>, the prefix defaulting to the kind.
func mountPrefix(prefix string) (dtab.Path, error) {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		prefix = Kind
	}
	p, err := dtab.ParsePath("/" + prefix)
	if err != nil {
		return nil, err
	}
	return dtab.Path{"#"}.Concat(p), nil
}
