package routerd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy/thrift"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// This file holds what `protocol: thrift` and `protocol: thriftmux`
// routers share: the Thrift keys of the router, its servers and its
// client, their checks, and the start-up of a router whose servers are
// thrift.Servers. What sets the two apart stays in thriftrouter.go
// (framing, TTwitter, per-prefix client speech) and
// thriftmuxrouter.go (experimental, Mux sessions).

// ThriftRouterCommon are the router keys of thrift and thriftmux routers.
type ThriftRouterCommon struct {
	RouterCommon `yaml:",inline"`
	// ThriftMethodInDst appends the method name to the logical name.
	ThriftMethodInDst bool `yaml:"thriftMethodInDst"`
	// ThriftProtocol is the protocol of the Thrift messages (binary, the
	// default, or compact), unless a server or the client sets its own.
	ThriftProtocol string `yaml:"thriftProtocol"`
}

// SetDefaults implements config.Defaulter.
func (r *ThriftRouterCommon) SetDefaults() { r.ThriftProtocol = "binary" }

// thriftRouterKind is what a thrift-family protocol says about its
// router keys.
type thriftRouterKind struct {
	protocol string
	// experimental: the protocol requires `experimental: true`.
	experimental bool
	// identifierHint explains why `identifier` is not a key.
	identifierHint string
}

// validate checks the keys of the router as a whole, in this order: the
// common router keys, experimental, servers (n of them), the client
// blocks (clients, when set), thriftProtocol.
func (r *ThriftRouterCommon) validate(k thriftRouterKind, servers int, clients func() error) error {
	if err := r.RouterCommon.validate(k.protocol); err != nil {
		return err
	}
	if k.experimental && !r.Experimental {
		return config.FieldError("protocol", "protocol %s is experimental and requires `experimental: true`", k.protocol)
	}
	if servers == 0 {
		return config.FieldError("servers", "at least one server is required")
	}
	if clients != nil {
		if err := clients(); err != nil {
			return err
		}
	}
	return validateThriftProtocol(r.ThriftProtocol)
}

// unknownKeyHint is the router's config.KeyHinter.
func (k thriftRouterKind) unknownKeyHint(key string) string {
	if key == "identifier" {
		return k.identifierHint
	}
	return otherProtocolHint(key, k.protocol)
}

func validateThriftProtocol(s string) error {
	if s == "" {
		return nil
	}
	if _, err := thrift.ParseProtocol(s); err != nil {
		return config.FieldError("thriftProtocol", "%q is not a thrift protocol (binary or compact)", s)
	}
	return nil
}

// thriftProtocol returns the protocol of a server or the client: its own
// thriftProtocol, else the router's.
func (r *ThriftRouterCommon) thriftProtocol(own string) thrift.Protocol {
	if own == "" {
		own = r.ThriftProtocol
	}
	p, _ := thrift.ParseProtocol(own) // validated when loaded
	return p
}

// ThriftServerCommon are the server keys of thrift and thriftmux routers.
type ThriftServerCommon struct {
	ServerCommon `yaml:",inline"`
	// ThriftProtocol overrides the router's thriftProtocol.
	ThriftProtocol string `yaml:"thriftProtocol"`
}

// Validate implements config.Validator.
func (s *ThriftServerCommon) Validate() error {
	if err := s.ServerCommon.Validate(); err != nil {
		return err
	}
	return validateThriftProtocol(s.ThriftProtocol)
}

// thriftServerKeyHint is the hint, common to thrift and thriftmux
// servers, for a server key of another protocol.
func thriftServerKeyHint(key, protocol string) string {
	switch key {
	case "addForwardedHeader", "timestampHeader", "maxCallDepth":
		return "`" + key + "` applies to the servers of http routers, not " + protocol
	}
	return ""
}

// ThriftClientCommon are the client keys of thrift and thriftmux routers.
type ThriftClientCommon struct {
	ClientParams `yaml:",inline"`
	// ThriftProtocol overrides the router's thriftProtocol.
	ThriftProtocol string `yaml:"thriftProtocol"`
}

// Validate implements config.Validator.
func (c *ThriftClientCommon) Validate() error {
	if err := c.ClientParams.Validate(); err != nil {
		return err
	}
	return validateThriftProtocol(c.ThriftProtocol)
}

// thriftClientKeyHint is the hint, common to thrift and thriftmux
// clients, for a client key of another protocol.
func thriftClientKeyHint(key, protocol string) string {
	switch key {
	case "forwardClientCert", "requestAuthorizers":
		return "`" + key + "` applies to the clients of http and h2 routers, not " + protocol
	}
	return ""
}

// ThriftServiceParams are the service keys of thrift and thriftmux
// routers.
type ThriftServiceParams struct {
	ServiceParams `yaml:",inline"`
}

// UnknownKeyHint implements config.KeyHinter.
func (s *ThriftServiceParams) UnknownKeyHint(key string) string {
	if key == "responseClassifier" {
		return "`responseClassifier` does not apply to thrift routers: a call is a success when the endpoint replies (a reply carrying an exception included), a failure when it cannot"
	}
	return ""
}

// thriftClassifier is a thrift router's response classifier: the
// endpoint's reply is a success, whatever it carries (as Linkerd, which
// forwards replies undecoded); an error is a failure, which retries leave
// alone: a call may have side effects (requeues resend calls that were
// never written).
var thriftClassifier = middleware.ClassifierFunc(func(_ *http.Request, _ *http.Response, err error) middleware.Class {
	return middleware.Class{Success: err == nil}
})

// checkThriftServers returns the warnings for the servers of a thrift or
// thriftmux router.
func checkThriftServers(servers []*ServerCommon) []string {
	var warnings []string
	for i, s := range servers {
		if s.TimeoutMs > 0 {
			warnings = append(warnings, fmt.Sprintf("servers[%d].timeoutMs is not supported yet; use service.totalTimeoutMs", i))
		}
		warnings = append(warnings, checkServerCommon(i, s)...)
	}
	return warnings
}

// thriftStart is how a thrift or thriftmux router is started: the parts
// in which the protocols differ.
type thriftStart struct {
	// warnings are the router's checkThriftRouter or checkThriftMuxRouter.
	warnings []string
	// client and service are the router's policies for a name.
	client  func(dtab.Path) ClientParams
	service func(dtab.Path) ServiceParams
	// transport returns the options of the endpoint transports, or the
	// error of a client block that cannot be used.
	transport func(ctx context.Context, log *slog.Logger) (thrift.TransportOptions, error)
	// newTransport returns the transport of the endpoint addr.
	newTransport func(addr string, o thrift.TransportOptions, log *slog.Logger) router.Transport
	// servers are the router's servers and whether their clients frame
	// messages.
	servers []thriftStartServer
	// serve returns what serves a server's listener, given its thrift
	// server and its idle timeout.
	serve func(srv *thrift.Server, s *ThriftServerCommon, idle time.Duration, log *slog.Logger) server
}

// thriftStartServer is a server of a router being started.
type thriftStartServer struct {
	*ThriftServerCommon
	framed bool
}

// thriftServerConfig is a server config of a thrift-family router
// (*ThriftServer, *ThriftMuxServer).
type thriftServerConfig[S any] interface {
	*S
	// thriftServer returns the common server keys and whether the
	// server's clients frame their messages.
	thriftServer() (*ThriftServerCommon, bool)
}

// thriftServers returns the servers of a thrift-family router.
func thriftServers[S any, P thriftServerConfig[S]](servers []S) []thriftStartServer {
	out := make([]thriftStartServer, len(servers))
	for i := range servers {
		c, framed := P(&servers[i]).thriftServer()
		out[i] = thriftStartServer{ThriftServerCommon: c, framed: framed}
	}
	return out
}

// thriftServerList implements Router.ServerList for a thrift-family
// router.
func thriftServerList[S any, P thriftServerConfig[S]](servers []S) []*ServerCommon {
	out := make([]*ServerCommon, len(servers))
	for i := range servers {
		c, _ := P(&servers[i]).thriftServer()
		out[i] = &c.ServerCommon
	}
	return out
}

// startThrift starts a thrift or thriftmux router: its interpreter, its
// router with endpoint transports made by st.newTransport, and a
// thrift.Server per server, served by st.serve.
func (p *Process) startThrift(ctx context.Context, tr *ThriftRouterCommon, st thriftStart, namers []naming.MountedNamer, env naming.Env) (*router.Router, admin.RouterInfo, error) {
	label := tr.Label
	log := p.log.With("router", label)
	for _, w := range st.warnings {
		log.Warn(w)
	}
	scope := telemetry.RouterScope(p.reg.Scope(), label)
	ienv := naming.InterpreterEnv{Env: env, Namers: namers, Label: label}
	ienv.Logger = log
	ienv.Scope = scope.Scope("interpreter", tr.Interpreter.Kind)
	interp, err := tr.Interpreter.Value.NewInterpreter(ienv)
	if err != nil {
		return nil, admin.RouterInfo{}, fmt.Errorf("interpreter %s: %w", tr.Interpreter.Kind, err)
	}
	if tr.Originator {
		scope.Gauge("originator", func() float64 { return 1 })
	}
	pol := &policies{
		clientFor: st.client,
		serviceFor: func(name dtab.Path) (ServiceParams, middleware.Classifier, error) {
			return st.service(name), thriftClassifier, nil
		},
		scope: scope, log: log.Warn,
	}
	topts, err := st.transport(ctx, log)
	if err != nil {
		return nil, admin.RouterInfo{}, err
	}
	tracer, err := p.tracers.NewTracer(telemetry.TracerOptions{Router: label}) // l5d-ctx-trace: thrift routers have no tracePropagator
	if err != nil {
		return nil, admin.RouterInfo{}, fmt.Errorf("tracePropagator: %w", err)
	}
	conns := new(endpointConns)
	rt := router.New(router.Params{
		Label:          label,
		Dtab:           tr.Dtab.Dtab,
		Interpreter:    interp,
		BindingTimeout: time.Duration(tr.BindingTimeoutMs) * time.Millisecond,
		IdleTTL:        time.Duration(tr.BindingCache.IdleTTLSecs) * time.Second,
		Scope:          scope,
		Service:        pol.service,
		Client:         conns.countConns(scope, pol.client),
		NewTransport: func(addr string) router.Transport {
			o := topts
			o.WrapConn = conns.wrapConn(addr)
			return traceTransport(tracer, st.newTransport(addr, o, log))
		},
	})
	p.routers = append(p.routers, rt)
	for i, s := range st.servers {
		tlsConf, err := newServerTLS(ctx, s.TLS, nil, log)
		if err != nil {
			return nil, admin.RouterInfo{}, fmt.Errorf("servers[%d].tls: %w", i, err)
		}
		ln, err := net.Listen("tcp", s.Addr())
		if err != nil {
			return nil, admin.RouterInfo{}, fmt.Errorf("servers[%d]: %w", i, err)
		}
		if tlsConf != nil {
			ln = &tlsListener{Listener: ln, cfg: tlsConf}
		}
		port := ln.Addr().(*net.TCPAddr).Port
		sscope := telemetry.ServerScope(scope, s.IP, port)
		ln = &countingListener{Listener: ln, m: newConnMetrics(sscope)}
		idle, life := serverSession(s.ServerSession, 10*time.Minute)
		srv := thrift.NewServer(thrift.ServerParams{
			Router:                rt,
			DstPrefix:             tr.DstPrefix.Path,
			MethodInDst:           tr.ThriftMethodInDst,
			Codec:                 thrift.Codec{Protocol: tr.thriftProtocol(s.ThriftProtocol), Framed: s.framed},
			MaxConcurrentRequests: s.MaxConcurrentRequests,
			ClearContext:          s.ClearContext,
			IdleTimeout:           idle,
			LifeTime:              life,
			Scope:                 sscope,
			Logger:                log,
			Trace: func(h http.Handler) http.Handler {
				return traceServer(tracer, false, tr.Dtab.Dtab, h)
			},
		})
		p.servers = append(p.servers, &listener{name: label + " " + ln.Addr().String(), ln: ln, srv: st.serve(srv, s.ThriftServerCommon, idle, log)})
	}
	return rt, admin.RouterInfo{Label: label, Dtab: tr.Dtab.Dtab, Interpreter: interp}, nil
}
