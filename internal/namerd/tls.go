package namerd

import (
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// ServerTLS is the `tls` block of an interface or of the admin server:
// Linkerd's server TLS keys, the same block a router's servers take.
type ServerTLS = tlsconf.ServerConfig

// serverTLS builds the TLS configuration of t, offering nextProtos over
// ALPN, or nil when TLS is off.
func serverTLS(t *ServerTLS, nextProtos ...string) (*tlsconf.Server, error) {
	if !t.On() {
		return nil, nil
	}
	return tlsconf.NewServer(t.Options(nextProtos...))
}
