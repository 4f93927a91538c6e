package tlsconf

import (
	"fmt"

	"github.com/linnet-mesh/linnet/internal/config"
)

// ServerConfig is Linkerd's server `tls` block (spec/config.md §6.3), the
// same wherever a server takes one: a router's servers, namerd's
// interfaces, the admin servers. It decodes with internal/config;
// NewServer(c.Options(...)) builds it.
type ServerConfig struct {
	Enabled               bool     `yaml:"enabled"`
	CertPath              string   `yaml:"certPath" config:"required"`
	KeyPath               string   `yaml:"keyPath" config:"required"`
	IntermediateCertsPath string   `yaml:"intermediateCertsPath"`
	CACertPath            string   `yaml:"caCertPath"`
	RequireClientAuth     bool     `yaml:"requireClientAuth"`
	Protocols             []string `yaml:"protocols"`
	Ciphers               []string `yaml:"ciphers" config:"unsupported"`
}

// SetDefaults implements config.Defaulter: a `tls` block is enabled
// unless it says otherwise.
func (t *ServerConfig) SetDefaults() { t.Enabled = true }

// Validate implements config.Validator.
func (t *ServerConfig) Validate() error {
	if t.RequireClientAuth && t.CACertPath == "" {
		return config.FieldError("caCertPath", "requireClientAuth needs caCertPath to verify client certificates")
	}
	for i, p := range t.Protocols {
		if _, ok := protocolVersions[p]; !ok {
			return config.FieldError(fmt.Sprintf("protocols[%d]", i), "unknown TLS protocol %q (known: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)", p)
		}
	}
	return nil
}

// On reports whether the block is present and enabled.
func (t *ServerConfig) On() bool { return t != nil && t.Enabled }

// Options returns the block's ServerOptions, offering nextProtos over
// ALPN (most preferred first).
func (t *ServerConfig) Options(nextProtos ...string) ServerOptions {
	return ServerOptions{
		CertPath:              t.CertPath,
		KeyPath:               t.KeyPath,
		IntermediateCertsPath: t.IntermediateCertsPath,
		CACertPath:            t.CACertPath,
		RequireClientAuth:     t.RequireClientAuth,
		Protocols:             t.Protocols,
		NextProtos:            nextProtos,
	}
}
