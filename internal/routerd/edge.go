package routerd

import (
	"fmt"
	"net"
)

// EdgeWarnings lists the servers that accept traffic from beyond this
// host while honouring l5d-dtab and l5d-ctx-* headers: any client that
// can reach them can reroute its requests (and its whole call tree) with
// one header. Linkerd 1.x left this to an nginx in front; Linnet says so
// at startup and in `linnet check`, and clearContext: true fixes it.
func EdgeWarnings(c *Config) []string {
	var out []string
	for i, r := range c.Routers {
		if r.Value == nil {
			continue
		}
		label := r.Value.Common().Label
		for j, s := range r.Value.ServerList() {
			if s.ClearContext || isLoopback(s.IP) {
				continue
			}
			out = append(out, fmt.Sprintf(
				"routers[%d].servers[%d] (router %q, %s) listens beyond loopback and honours l5d-dtab and l5d-ctx-* headers: "+
					"any client that reaches it can reroute requests; set clearContext: true if it faces untrusted traffic",
				i, j, label, s.Addr()))
		}
	}
	return out
}

func isLoopback(ip string) bool {
	a := net.ParseIP(ip)
	return a != nil && a.IsLoopback()
}
