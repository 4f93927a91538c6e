package namerd

import (
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// ServerTLS is the `tls` block of an interface or of the admin server
// (Linkerd's server TLS keys).
type ServerTLS struct {
	Enabled               bool     `yaml:"enabled"`
	CertPath              string   `yaml:"certPath" config:"required"`
	KeyPath               string   `yaml:"keyPath" config:"required"`
	IntermediateCertsPath string   `yaml:"intermediateCertsPath"`
	CACertPath            string   `yaml:"caCertPath"`
	RequireClientAuth     bool     `yaml:"requireClientAuth"`
	Protocols             []string `yaml:"protocols"`
	Ciphers               []string `yaml:"ciphers" config:"unsupported"`
}

// SetDefaults implements config.Defaulter.
func (t *ServerTLS) SetDefaults() { t.Enabled = true }

// Validate implements config.Validator.
func (t *ServerTLS) Validate() error {
	if t.RequireClientAuth && t.CACertPath == "" {
		return config.FieldError("caCertPath", "requireClientAuth needs caCertPath to verify client certificates")
	}
	for i, p := range t.Protocols {
		switch p {
		case "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3":
		default:
			return config.FieldError("protocols", "protocols[%d]: unknown TLS version %q (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)", i, p)
		}
	}
	return nil
}

// server builds the TLS configuration, or nil when TLS is off.
func (t *ServerTLS) server() (*tlsconf.Server, error) {
	if t == nil || !t.Enabled {
		return nil, nil
	}
	return tlsconf.NewServer(tlsconf.ServerOptions{
		CertPath:              t.CertPath,
		KeyPath:               t.KeyPath,
		IntermediateCertsPath: t.IntermediateCertsPath,
		CACertPath:            t.CACertPath,
		RequireClientAuth:     t.RequireClientAuth,
		Protocols:             t.Protocols,
	})
}
