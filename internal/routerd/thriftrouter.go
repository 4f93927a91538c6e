package routerd

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/proxy/thrift"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
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
	RouterCommon `yaml:",inline"`
	// ThriftMethodInDst appends the method name to the logical name.
	ThriftMethodInDst bool `yaml:"thriftMethodInDst"`
	// ThriftProtocol is the protocol of the servers and the client unless
	// they set their own (binary, the default, or compact).
	ThriftProtocol string                      `yaml:"thriftProtocol"`
	Servers        []ThriftServer              `yaml:"servers" config:"required"`
	Client         Policy[ThriftClientParams]  `yaml:"client"`
	Service        Policy[ThriftServiceParams] `yaml:"service"`
}

// SetDefaults implements config.Defaulter.
func (r *ThriftRouter) SetDefaults() { r.ThriftProtocol = "binary" }

// ServerList implements Router.
func (r *ThriftRouter) ServerList() []*ServerCommon {
	out := make([]*ServerCommon, len(r.Servers))
	for i := range r.Servers {
		out[i] = &r.Servers[i].ServerCommon
	}
	return out
}

// Validate implements config.Validator.
func (r *ThriftRouter) Validate() error {
	if err := r.RouterCommon.validate(ProtocolThrift); err != nil {
		return err
	}
	if len(r.Servers) == 0 {
		return config.FieldError("servers", "at least one server is required")
	}
	return validateThriftProtocol(r.ThriftProtocol)
}

// UnknownKeyHint implements config.KeyHinter.
func (r *ThriftRouter) UnknownKeyHint(key string) string {
	if key == "identifier" {
		return "`identifier` does not apply to thrift routers: a call's name is dstPrefix, followed by its method name with thriftMethodInDst: true"
	}
	return otherProtocolHint(key, ProtocolThrift)
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
func (r *ThriftRouter) thriftProtocol(own string) thrift.Protocol {
	if own == "" {
		own = r.ThriftProtocol
	}
	p, _ := thrift.ParseProtocol(own) // validated when loaded
	return p
}

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
	ServerCommon `yaml:",inline"`
	// ThriftFramed says clients send framed messages (TFramedTransport);
	// false: buffered (TBufferedTransport). Default true.
	ThriftFramed bool `yaml:"thriftFramed"`
	// ThriftProtocol overrides the router's thriftProtocol.
	ThriftProtocol string `yaml:"thriftProtocol"`
}

// SetDefaults implements config.Defaulter.
func (s *ThriftServer) SetDefaults() { s.Port, s.ThriftFramed = DefaultThriftPort, true }

// Validate implements config.Validator.
func (s *ThriftServer) Validate() error {
	if err := s.ServerCommon.Validate(); err != nil {
		return err
	}
	return validateThriftProtocol(s.ThriftProtocol)
}

// UnknownKeyHint implements config.KeyHinter.
func (s *ThriftServer) UnknownKeyHint(key string) string {
	switch key {
	case "addForwardedHeader", "timestampHeader", "maxCallDepth":
		return "`" + key + "` applies to the servers of http routers, not thrift"
	}
	return ""
}

// ThriftClientParams are the client keys of a thrift router.
type ThriftClientParams struct {
	ClientParams `yaml:",inline"`
	// ThriftFramed says endpoints expect framed messages. Default true.
	ThriftFramed bool `yaml:"thriftFramed"`
	// ThriftProtocol overrides the router's thriftProtocol.
	ThriftProtocol string `yaml:"thriftProtocol"`
	// AttemptTTwitterUpgrade asks each new endpoint connection for
	// Finagle's TTwitter upgrade: calls then carry a header with the
	// trace, client id, dest and delegations (the local dtab). An
	// endpoint that refuses it is spoken to in plain Thrift.
	AttemptTTwitterUpgrade bool `yaml:"attemptTTwitterUpgrade"`
}

// SetDefaults implements config.Defaulter.
func (c *ThriftClientParams) SetDefaults() { c.ThriftFramed = true }

// Validate implements config.Validator.
func (c *ThriftClientParams) Validate() error {
	if err := c.ClientParams.Validate(); err != nil {
		return err
	}
	return validateThriftProtocol(c.ThriftProtocol)
}

// UnknownKeyHint implements config.KeyHinter.
func (c *ThriftClientParams) UnknownKeyHint(key string) string {
	switch key {
	case "forwardClientCert", "requestAuthorizers":
		return "`" + key + "` applies to the clients of http and h2 routers, not thrift"
	}
	return ""
}

// ThriftServiceParams are the service keys of a thrift router.
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
	for i, s := range tr.Servers {
		if s.TimeoutMs > 0 {
			warnings = append(warnings, fmt.Sprintf("servers[%d].timeoutMs is not supported yet; use service.totalTimeoutMs", i))
		}
		warnings = append(warnings, checkServerCommon(i, &s.ServerCommon)...)
	}
	return warnings
}

func (p *Process) startThriftRouter(ctx context.Context, tr *ThriftRouter, namers []naming.MountedNamer, env naming.Env) (*router.Router, admin.RouterInfo, error) {
	label := tr.Label
	log := p.log.With("router", label)
	for _, w := range checkThriftRouter(tr) {
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
		clientFor: func(id dtab.Path) ClientParams { return tr.Client.For(id).ClientParams },
		serviceFor: func(name dtab.Path) (ServiceParams, middleware.Classifier, error) {
			return tr.Service.For(name).ServiceParams, thriftClassifier, nil
		},
		scope: scope, log: log.Warn,
	}
	gc := tr.Client.Global
	topts := thrift.TransportOptions{
		Codec:       thrift.Codec{Protocol: tr.thriftProtocol(gc.ThriftProtocol), Framed: gc.ThriftFramed},
		IdleTimeout: clientIdleTime(gc.HostConnectionPool.IdleTimeMs, gc.ClientSession),
		TTwitter:    gc.AttemptTTwitterUpgrade,
	}
	if err := checkClientTLS(&tr.Client, func(c *ThriftClientParams) *ClientTLS { return c.TLS }, nil); err != nil {
		return nil, admin.RouterInfo{}, err
	}
	if policyHasTLS(&tr.Client, tr.Client.Global.TLS) {
		// Client TLS belongs to the bound name (its commonName may use
		// the {vars} of an io.l5d.static prefix): chosen per call.
		topts.TLSFor = newClientTLSChooser(ctx, func(id dtab.Path) *ClientTLS { return tr.Client.For(id).TLS }, nil, log)
	}
	topts.SpeakFor = tr.speechByClient()
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
			return traceTransport(tracer, thrift.NewTransport(addr, o))
		},
	})
	p.routers = append(p.routers, rt)
	for i := range tr.Servers {
		s := &tr.Servers[i]
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
			Codec:                 thrift.Codec{Protocol: tr.thriftProtocol(s.ThriftProtocol), Framed: s.ThriftFramed},
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
		p.servers = append(p.servers, &listener{name: label + " " + ln.Addr().String(), ln: ln, srv: srv})
	}
	return rt, admin.RouterInfo{Label: label, Dtab: tr.Dtab.Dtab, Interpreter: interp}, nil
}
