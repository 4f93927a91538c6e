package routerd

import (
	"fmt"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
)

// checkHTTPRouter refuses options of an http router that this version
// accepts in the file but cannot honour where ignoring them would change
// behaviour silently, and returns warnings for options it ignores
// harmlessly.
func checkHTTPRouter(hr *HTTPRouter) (warnings []string, err error) {
	if hr.HTTPAccessLog != "" && hr.HTTPAccessLogRollPolicy != "" && hr.HTTPAccessLogRollPolicy != "never" {
		warnings = append(warnings, "httpAccessLogRollPolicy is not supported yet; the access log is never rolled (use logrotate with copytruncate)")
	}
	if hr.CompressionLevel > 0 {
		warnings = append(warnings, "compressionLevel is ignored: responses are passed through uncompressed")
	}
	if !hr.StreamingEnabled {
		warnings = append(warnings, "streamingEnabled: false is ignored; bodies are always streamed")
	}
	if hr.StreamAfterContentLengthKB != nil {
		warnings = append(warnings, "streamAfterContentLengthKB is ignored: bodies are always streamed, whatever their length")
	}
	warnings = append(warnings, checkRouterCommon(&hr.RouterCommon)...)
	for _, b := range clientBlocks(&hr.Client) {
		warnings = append(warnings, checkClientParams(b.where, &b.params.ClientParams)...)
		warnings = append(warnings, checkClientSession(b.where, b.params.ClientSession, b.raw != nil, false)...)
		pool := b.params.HostConnectionPool
		switch {
		case b.perPrefix(hostConnectionPoolKey):
			warnings = append(warnings, fmt.Sprintf(warnPerPrefixPool, b.where))
		case b.raw == nil:
			if pool.MinSize > 0 {
				warnings = append(warnings, "client.hostConnectionPool.minSize is not supported yet; no connection is opened before a request needs it")
			}
		}
	}
	for i, s := range hr.Servers {
		if s.TimeoutMs > 0 {
			warnings = append(warnings, fmt.Sprintf("servers[%d].timeoutMs is not supported yet; use service.totalTimeoutMs", i))
		}
		warnings = append(warnings, checkServerCommon(i, &s.ServerCommon)...)
	}
	return warnings, nil
}

// Warnings for options accepted by both protocols but not applied. Each
// starts with the option's place in the file; the checks below say when
// they apply.
const (
	hostConnectionPoolKey = "hostConnectionPool"
	clientSessionKey      = "clientSession"
	// warnPerPrefixPool takes the place of an io.l5d.static entry. The
	// connections to an endpoint are shared by every bound name that
	// includes it (policies.transport), so only a router-wide pool exists.
	warnPerPrefixPool = "%s.hostConnectionPool is not supported per prefix; connections to an endpoint are shared by every name, so set it with client kind io.l5d.global"
)

// checkRouterCommon returns the warnings for the router keys every
// protocol has.
func checkRouterCommon(rc *RouterCommon) []string {
	var defaults BindingCache
	defaults.SetDefaults()
	bc := rc.BindingCache
	var sizes []string
	for _, f := range []struct {
		name     string
		v, deflt int
	}{{"paths", bc.Paths, defaults.Paths}, {"trees", bc.Trees, defaults.Trees}, {"bounds", bc.Bounds, defaults.Bounds}, {"clients", bc.Clients, defaults.Clients}} {
		if f.v != f.deflt {
			sizes = append(sizes, "bindingCache."+f.name)
		}
	}
	if len(sizes) == 0 {
		return nil
	}
	verb := "is"
	if len(sizes) > 1 {
		verb = "are"
	}
	return []string{fmt.Sprintf("%s %s ignored: the binding caches have no size limit; entries unused for bindingCache.idleTtlSecs (%d s) are closed",
		strings.Join(sizes, ", "), verb, bc.IdleTTLSecs)}
}

// checkServerCommon returns the warnings for the server keys every
// protocol has (timeoutMs aside, which the callers check). serverSession
// is applied by both protocols (http1.Server.SetLifeTime,
// h2.ServerOptions).
func checkServerCommon(i int, s *ServerCommon) []string {
	var warnings []string
	if s.Label != "" {
		warnings = append(warnings, fmt.Sprintf("servers[%d].label is ignored: server metrics and logs name a server by its address", i))
	}
	return warnings
}

// checkClientSession returns the warnings for a client block's
// clientSession: it is read from the io.l5d.global block only (perPrefix:
// the block is an io.l5d.static entry), like hostConnectionPool; its
// lifeTimeMs covers HTTP/1.1's pooled connections of requests without a
// body (http1.TransportOptions.LifeTime) and no h2 connection.
func checkClientSession(where string, s *SessionConf, perPrefix, h2 bool) []string {
	switch {
	case s == nil:
		return nil
	case perPrefix:
		return []string{where + "." + clientSessionKey + " is not supported per prefix; connections to an endpoint are shared by every name, so set it with client kind io.l5d.global"}
	case s.LifeTimeMs > 0 && h2:
		return []string{where + ".clientSession.lifeTimeMs is not supported on h2 routers; a connection to an endpoint is closed once idle (clientSession.idleTimeMs, else 60 s) and has no maximum lifetime"}
	case s.LifeTimeMs > 0:
		return []string{where + ".clientSession.lifeTimeMs applies to the connections of requests without a body only; a connection that carried a request with a body is closed once idle (clientSession.idleTimeMs or hostConnectionPool.idleTimeMs, else 60 s) and has no maximum lifetime"}
	}
	return nil
}

// checkClientParams returns the warnings for the client keys every
// protocol has, set in one client block (where: its place in the file).
func checkClientParams(where string, cp *ClientParams) []string {
	var warnings []string
	if cp.FailFast {
		warnings = append(warnings, where+".failFast is not supported yet; endpoints are taken out of service by failureAccrual only")
	}
	if cp.LoadBalancer.EnableProbation {
		warnings = append(warnings, where+".loadBalancer.enableProbation is ignored: an endpoint the namer removes is dropped once its requests in flight finish")
	}
	return warnings
}

// clientBlock is one block of client parameters as written in the file:
// the io.l5d.global block, or one io.l5d.static entry decoded onto the
// defaults (raw is then the entry, to tell which keys it sets).
type clientBlock[P any] struct {
	where  string
	params P
	raw    *config.Raw
}

// perPrefix reports whether the block is an io.l5d.static entry that
// sets key.
func (b *clientBlock[P]) perPrefix(key string) bool {
	if b.raw == nil {
		return false
	}
	_, ok := b.raw.Get(key)
	return ok
}

// clientBlocks returns the client blocks of a policy, in file order.
func clientBlocks[P any](p *Policy[P]) []clientBlock[P] {
	if p.Kind != PolicyStatic {
		return []clientBlock[P]{{where: "client", params: p.Global}}
	}
	out := make([]clientBlock[P], 0, len(p.Configs))
	for i := range p.Configs {
		b := clientBlock[P]{where: fmt.Sprintf("client.configs[%d]", i), raw: &p.Configs[i].raw}
		config.ApplyDefaults(&b.params)
		// Each entry decoded cleanly when the file was loaded.
		_ = b.raw.Decode(&b.params, "prefix")
		out = append(out, b)
	}
	return out
}

// Warnings lists, in config order, what `linnet router` warns about at
// startup: per router, the options it accepts but ignores (the checks
// above), then the servers open to rerouting from beyond this host
// (EdgeWarnings). `linnet check` prints the same list, so that a config
// that checks clean also starts without warnings.
func Warnings(c *Config) []string {
	var out []string
	for i, r := range c.Routers {
		var ws []string
		switch hr := r.Value.(type) {
		case *HTTPRouter:
			ws, _ = checkHTTPRouter(hr)
		case *H2Router:
			ws = checkH2Router(hr)
		case *ThriftRouter:
			ws = checkThriftRouter(hr)
		case *ThriftMuxRouter:
			ws = checkThriftMuxRouter(hr)
		default:
			continue
		}
		for _, w := range ws {
			out = append(out, fmt.Sprintf("routers[%d] (router %q): %s", i, r.Value.Common().Label, w))
		}
	}
	return append(out, EdgeWarnings(c)...)
}
