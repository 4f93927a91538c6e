package h2

import (
	"net"
	"net/http"

	"github.com/linnet-mesh/linnet/internal/proxy"
)

// edgeConn describes the connection r arrived on, for the optional edge
// headers (proxy.ServerEdge): net/http serves h2 and records the local
// address and TLS state itself.
func edgeConn(r *http.Request) proxy.Conn {
	c := proxy.Conn{Scheme: "http"}
	c.Local, _ = r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if r.TLS != nil {
		c.Scheme = "https"
		if len(r.TLS.PeerCertificates) > 0 {
			c.PeerCertDER = r.TLS.PeerCertificates[0].Raw
		}
	}
	return c
}
