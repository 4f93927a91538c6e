package zk

import (
	"fmt"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/zk"
)

// Kind is the config kind of this store.
const Kind = "io.l5d.zk"

func init() {
	config.Register[storage.Config](Kind, func() storage.Config { return new(Config) })
}

// Config is the io.l5d.zk storage block (namerd's keys):
//
//	storage:
//	  kind: io.l5d.zk
//	  experimental: true
//	  zkAddrs:
//	  - host: zk1.example.com
//	    port: 2181
//	  pathPrefix: /dtabs
//	  sessionTimeoutMs: 10000
//	  authInfo: {scheme: digest, auth: "namerd:secret"}
//	  acls:
//	  - {scheme: digest, id: "namerd:<base64 sha1>", perms: crwda}
type Config struct {
	storage.Common `yaml:",inline"`
	// ZkAddrs are the servers of the ensemble (required).
	ZkAddrs []zk.HostPort `yaml:"zkAddrs"`
	// PathPrefix is the znode under which each namespace is a child.
	PathPrefix string `yaml:"pathPrefix"`
	// SessionTimeoutMs is the ZooKeeper session timeout.
	SessionTimeoutMs int `yaml:"sessionTimeoutMs"`
	// AuthInfo is added to the session (ZooKeeper's addauth).
	AuthInfo *zk.AuthInfo `yaml:"authInfo"`
	// ACLs are set on the znodes namerd creates (default: world:anyone:crwda).
	ACLs []zk.ACL `yaml:"acls"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() { c.PathPrefix, c.SessionTimeoutMs = "/dtabs", 10000 }

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if err := zk.ValidateAddrs("zkAddrs", c.ZkAddrs); err != nil {
		return err
	}
	if err := zk.ValidatePath(c.PathPrefix); err != nil {
		return config.FieldError("pathPrefix", "%v", err)
	}
	if c.PathPrefix == "/" {
		return config.FieldError("pathPrefix", "must not be the root / (ZooKeeper keeps its own /zookeeper node there); the default is /dtabs")
	}
	if c.SessionTimeoutMs < 1000 || c.SessionTimeoutMs > 600000 {
		return config.FieldError("sessionTimeoutMs", "%d is not a session timeout from 1000 to 600000 ms", c.SessionTimeoutMs)
	}
	if err := c.AuthInfo.Validate("authInfo"); err != nil {
		return err
	}
	if _, err := zk.ParseACLs("acls", c.ACLs); err != nil {
		return err
	}
	return nil
}

// NewStore implements storage.Config.
func (c *Config) NewStore(env storage.Env) (storage.Store, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	acls, _ := zk.ParseACLs("acls", c.ACLs)
	return Open(Options{
		Servers:        zk.Servers(c.ZkAddrs),
		PathPrefix:     c.PathPrefix,
		SessionTimeout: time.Duration(c.SessionTimeoutMs) * time.Millisecond,
		Auth:           c.AuthInfo,
		ACLs:           acls,
		Logger:         env.Logger,
	})
}
