package routerd

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/proxy/thrift"
	"github.com/linnet-mesh/linnet/internal/router"
)

// The thrift protocol and its default server port (spec/config.md §2).
const (
	ProtocolThrift    = "thrift"
	DefaultThriftPort = 4114
)

func init() {
	config.Register[Router](ProtocolThrift, func() Router { return new(ThriftRouter) })
}

// ThriftRouter is a `protocol: thrift` router (spec/config.md §4.5): plain
// Thrift calls, framed or buffered, in the binary or compact protocol,
// and Finagle's TTwitter upgrade of them. Every call of a router gets the
// logical name dstPrefix (default /svc), followed by a TTwitter caller's
// dest, then the method name with thriftMethodInDst. Servers and clients
// speak TLS with the http router's tls blocks; calls are traced with the
// process's tracing telemeters (a span named after the method).
type ThriftRouter struct {
	ThriftRouterCommon `yaml:",inline"`
	Servers            []ThriftServer              `yaml:"servers" config:"required"`
	Client             Policy[ThriftClientParams]  `yaml:"client"`
	Service            Policy[ThriftServiceParams] `yaml:"service"`
}

var thriftKind = thriftRouterKind{
	protocol:       ProtocolThrift,
	identifierHint: "`identifier` does not apply to thrift routers: a call's name is dstPrefix, followed by its method name with thriftMethodInDst: true",
}

// ServerList implements Router.
func (r *ThriftRouter) ServerList() []*ServerCommon { return thriftServerList(r.Servers) }

// Validate implements config.Validator.
func (r *ThriftRouter) Validate() error {
	return r.validate(thriftKind, len(r.Servers), nil)
}

// UnknownKeyHint implements config.KeyHinter.
func (r *ThriftRouter) UnknownKeyHint(key string) string { return thriftKind.unknownKeyHint(key) }

// speechByClient returns how calls are spoken to endpoints when the
// client policy is io.l5d.static: the thriftFramed, thriftProtocol and
// attemptTTwitterUpgrade of the call's bound name (l5d-dst-client), each
// endpoint keeping a connection pool per distinct choice. Nil for one
// client block: TransportOptions.Codec and TTwitter apply.
func (r *ThriftRouter) speechByClient() func(*http.Request) thrift.Speech {
	if r.Client.Kind != PolicyStatic {
		return nil
	}
	var cache sync.Map // bound name → thrift.Speech (as h2's TLS choice: one small entry per bound name seen)
	return func(req *http.Request) thrift.Speech {
		bound := req.Header.Get(proxy.HeaderDstClient)
		if v, ok := cache.Load(bound); ok {
			return v.(thrift.Speech)
		}
		id, _ := dtab.ParsePath(bound) // the router's own header; an empty id matches only empty prefixes
		c := r.Client.For(id)
		sp := thrift.Speech{
			Codec:    thrift.Codec{Protocol: r.thriftProtocol(c.ThriftProtocol), Framed: c.ThriftFramed},
			TTwitter: c.AttemptTTwitterUpgrade,
		}
		v, _ := cache.LoadOrStore(bound, sp)
		return v.(thrift.Speech)
	}
}

// ThriftServer is a server of a thrift router.
type ThriftServer struct {
	ThriftServerCommon `yaml:",inline"`
	// ThriftFramed says clients send framed messages (TFramedTransport);
	// false: buffered (TBufferedTransport). Default true.
	ThriftFramed bool `yaml:"thriftFramed"`
}

// SetDefaults implements config.Defaulter.
func (s *ThriftServer) SetDefaults() { s.Port, s.ThriftFramed = DefaultThriftPort, true }

func (s *ThriftServer) thriftServer() (*ThriftServerCommon, bool) {
	return &s.ThriftServerCommon, s.ThriftFramed
}

// UnknownKeyHint implements config.KeyHinter.
func (s *ThriftServer) UnknownKeyHint(key string) string {
	return thriftServerKeyHint(key, ProtocolThrift)
}

// ThriftClientParams are the client keys of a thrift router.
type ThriftClientParams struct {
	ThriftClientCommon `yaml:",inline"`
	// ThriftFramed says endpoints expect framed messages. Default true.
	ThriftFramed bool `yaml:"thriftFramed"`
	// AttemptTTwitterUpgrade asks each new endpoint connection for
	// Finagle's TTwitter upgrade: calls then carry a header with the
	// trace, client id, dest and delegations (the local dtab). An
	// endpoint that refuses it is spoken to in plain Thrift.
	AttemptTTwitterUpgrade bool `yaml:"attemptTTwitterUpgrade"`
}

// SetDefaults implements config.Defaulter.
func (c *ThriftClientParams) SetDefaults() { c.ThriftFramed = true }

// UnknownKeyHint implements config.KeyHinter.
func (c *ThriftClientParams) UnknownKeyHint(key string) string {
	return thriftClientKeyHint(key, ProtocolThrift)
}

// checkThriftRouter returns warnings for the options of a thrift router
// that this version accepts but ignores harmlessly.
func checkThriftRouter(tr *ThriftRouter) []string {
	warnings := checkRouterCommon(&tr.RouterCommon)
	for _, b := range clientBlocks(&tr.Client) {
		warnings = append(warnings, checkClientParams(b.where, &b.params.ClientParams)...)
		if b.perPrefix(hostConnectionPoolKey) {
			warnings = append(warnings, fmt.Sprintf(warnPerPrefixPool, b.where))
		}
		if b.perPrefix(clientSessionKey) {
			warnings = append(warnings, b.where+".clientSession is not supported per prefix; connections to an endpoint are shared by every name, so set it with client kind io.l5d.global")
		}
		pool := b.params.HostConnectionPool
		if b.raw == nil && (pool.MinSize > 0 || pool.MaxSize > 0 || pool.MaxWaiters > 0) {
			warnings = append(warnings, "client.hostConnectionPool minSize, maxSize and maxWaiters are not supported on thrift routers yet; a connection is opened per call in flight and up to 64 idle ones are kept per endpoint (idleTimeMs applies)")
		}
		if s := b.params.ClientSession; b.raw == nil && s != nil && s.LifeTimeMs > 0 {
			warnings = append(warnings, "client.clientSession.lifeTimeMs is not supported on thrift routers; a connection is closed once idle (clientSession.idleTimeMs or hostConnectionPool.idleTimeMs, else 60 s)")
		}
	}
	return append(warnings, checkThriftServers(tr.ServerList())...)
}

func (p *Process) startThriftRouter(ctx context.Context, tr *ThriftRouter, namers []naming.MountedNamer, env naming.Env) (*router.Router, admin.RouterInfo, error) {
	return p.startThrift(ctx, &tr.ThriftRouterCommon, thriftStart{
		warnings: checkThriftRouter(tr),
		client:   func(id dtab.Path) ClientParams { return tr.Client.For(id).ClientParams },
		service:  func(name dtab.Path) ServiceParams { return tr.Service.For(name).ServiceParams },
		transport: func(ctx context.Context, log *slog.Logger) (thrift.TransportOptions, error) {
			gc := tr.Client.Global
			topts := thrift.TransportOptions{
				Codec:       thrift.Codec{Protocol: tr.thriftProtocol(gc.ThriftProtocol), Framed: gc.ThriftFramed},
				IdleTimeout: clientIdleTime(gc.HostConnectionPool.IdleTimeMs, gc.ClientSession),
				TTwitter:    gc.AttemptTTwitterUpgrade,
			}
			if err := checkClientTLS(&tr.Client, func(c *ThriftClientParams) *ClientTLS { return c.TLS }, nil); err != nil {
				return thrift.TransportOptions{}, err
			}
			if policyHasTLS(&tr.Client, tr.Client.Global.TLS) {
				// Client TLS belongs to the bound name (its commonName may use
				// the {vars} of an io.l5d.static prefix): chosen per call.
				topts.TLSFor = newClientTLSChooser(ctx, func(id dtab.Path) *ClientTLS { return tr.Client.For(id).TLS }, nil, log)
			}
			topts.SpeakFor = tr.speechByClient()
			return topts, nil
		},
		newTransport: func(addr string, o thrift.TransportOptions, _ *slog.Logger) router.Transport {
			return thrift.NewTransport(addr, o)
		},
		servers: thriftServers(tr.Servers),
		serve: func(srv *thrift.Server, _ *ThriftServerCommon, _ time.Duration, _ *slog.Logger) server {
			return srv
		},
	}, namers, env)
}
