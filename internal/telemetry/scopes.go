package telemetry

import (
	"strconv"
	"strings"
)

// RouterScope returns rt/<label>, the scope of one router.
func RouterScope(root Scope, label string) Scope { return root.Scope("rt", label) }

// ServerScope returns <router>/server/<ip>/<port>; "<ip>/<port>" is one
// tree node and becomes the Prometheus label server="<ip>/<port>".
func ServerScope(router Scope, ip string, port int) Scope {
	return router.Scope("server", ip+"/"+strconv.Itoa(port))
}

// ServiceScope returns <router>/service/<name>, name being the logical
// name (e.g. /svc/world) without its leading '/'.
func ServiceScope(router Scope, logical string) Scope {
	return router.Scope("service", scopeID(logical))
}

// ClientScope returns <router>/client/<id>, id being the bound name (e.g.
// /$/inet/127.1/8888 or /%/io.l5d.port/4141/#/io.l5d.fs/x) without its
// leading '/'.
func ClientScope(router Scope, bound string) Scope {
	return router.Scope("client", scopeID(bound))
}

// ClientServiceScope returns <client>/service/<name>: the requests of one
// logical name through one client.
func ClientServiceScope(client Scope, logical string) Scope {
	return client.Scope("service", scopeID(logical))
}

// NamerScope returns namer/<prefix> (prefix without leading '/').
func NamerScope(root Scope, prefix string) Scope {
	return root.Scope("namer", scopeID(prefix))
}

func scopeID(name string) string {
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		return "/" // the root path still needs a node
	}
	return name
}
