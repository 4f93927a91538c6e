package tlsconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
)

// ClientConfig is Linkerd's client `tls` block for a connection to one
// known peer: namerd (io.l5d.namerd.http, io.l5d.mesh), etcd, Consul. (A
// router's clients have their own block, with {service} names, in
// internal/routerd.) It decodes with internal/config; TLSConfig builds it.
type ClientConfig struct {
	Enabled           bool        `yaml:"enabled"`
	CommonName        string      `yaml:"commonName"`
	TrustCertsBundle  string      `yaml:"trustCertsBundle"`
	TrustCerts        []string    `yaml:"trustCerts"`
	DisableValidation bool        `yaml:"disableValidation"`
	ClientAuth        *ClientAuth `yaml:"clientAuth"`
	Protocols         []string    `yaml:"protocols"`
}

// ClientAuth is the certificate a client presents (`clientAuth`).
type ClientAuth struct {
	CertPath              string `yaml:"certPath" config:"required"`
	KeyPath               string `yaml:"keyPath" config:"required"`
	IntermediateCertsPath string `yaml:"intermediateCertsPath"`
}

// SetDefaults implements config.Defaulter: a `tls` block is enabled
// unless it says otherwise.
func (t *ClientConfig) SetDefaults() { t.Enabled = true }

// Validate implements config.Validator.
func (t *ClientConfig) Validate() error {
	if t.Enabled && t.CommonName == "" && !t.DisableValidation {
		return config.FieldError("commonName", "TLS needs `commonName` (the name the server's certificate carries) unless disableValidation is true")
	}
	for i, p := range t.Protocols {
		if _, ok := protocolVersions[p]; !ok {
			return config.FieldError(fmt.Sprintf("protocols[%d]", i), "unknown TLS protocol %q (known: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)", p)
		}
	}
	return nil
}

// TLSConfig returns the client configuration, or nil when the block is
// absent or disabled, offering nextProtos over ALPN. The certificate files
// are read once; WatchedTLSConfig also follows their changes.
func (t *ClientConfig) TLSConfig(nextProtos ...string) (*tls.Config, error) {
	c, err := t.client(nil, nextProtos)
	if c == nil || err != nil {
		return nil, err
	}
	return c.Config(nil)
}

// WatchedTLSConfig is TLSConfig whose certificate files are re-read when
// they change, until ctx ends; a failed reload is logged to log, naming
// peer, and the previous files are kept.
func (t *ClientConfig) WatchedTLSConfig(ctx context.Context, log *slog.Logger, peer string, nextProtos ...string) (*tls.Config, error) {
	if log == nil {
		log = slog.Default()
	}
	c, err := t.client(log, nextProtos)
	if c == nil || err != nil {
		return nil, err
	}
	go Watch(ctx, c, 10*time.Second, func(err error) {
		log.Warn("reloading TLS files for "+peer+" failed; keeping the previous ones", "err", err)
	})
	return c.Config(nil)
}

func (t *ClientConfig) client(log *slog.Logger, nextProtos []string) (*Client, error) {
	if t == nil || !t.Enabled {
		return nil, nil
	}
	o := ClientOptions{
		CommonName:        t.CommonName,
		TrustCertsBundle:  t.TrustCertsBundle,
		TrustCerts:        t.TrustCerts,
		DisableValidation: t.DisableValidation,
		Protocols:         t.Protocols,
		NextProtos:        nextProtos,
		Logger:            log,
	}
	if a := t.ClientAuth; a != nil {
		o.ClientCertPath, o.ClientKeyPath, o.ClientIntermediateCertsPath = a.CertPath, a.KeyPath, a.IntermediateCertsPath
	}
	return NewClient(o)
}
