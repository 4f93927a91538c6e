package routerd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/admin/dashboard"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/proxy/http1"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"

	// Generic transformers (io.l5d.port, io.l5d.localhost, io.l5d.specificHost,
	// io.l5d.replace, io.l5d.const).
	_ "github.com/linnet-mesh/linnet/internal/router/transformers"
)

// Options are the process-level settings of Start.
type Options struct {
	Logger *slog.Logger
	// Text is the configuration as given, re-rendered as /config.json.
	Text []byte
	// LogLevel, when set, is the level of Logger (the CLI's -log.level):
	// the admin server's /logging and /logging.json show and change it.
	LogLevel *slog.LevelVar
	// DisableExpressLane sends every request through the router's full
	// stack (the express lane, docs/performance.md, is for plain requests
	// only and changes nothing observable; this is for comparing).
	DisableExpressLane bool
}

// Process is a running router process: its routers, their servers, the
// admin server and the namers and telemeters they share.
type Process struct {
	log     *slog.Logger
	cancel  context.CancelFunc
	reg     *telemetry.Registry
	grace   time.Duration
	routers []*router.Router
	servers []*listener
	ann     *announcements // announce.go
	admin   *listener
	closers []func() error
	// tracers makes each router's Tracer (see telemetry.go).
	tracers telemetry.TracerFactory
	// disableExpress is Options.DisableExpressLane.
	disableExpress bool

	done     chan struct{}
	stopOnce sync.Once
	stopErr  error
}

type listener struct {
	name string
	srv  server
	ln   net.Listener
}

// server is what serves a listener: an *http.Server (admin) or an
// *http1.Server (router servers).
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// Start builds everything cfg describes and starts serving. Stop (or
// POST /admin/shutdown) drains it; Done is closed when it has stopped.
func Start(ctx context.Context, cfg *Config, o Options) (_ *Process, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Process{
		log:    o.Logger,
		cancel: cancel,
		reg:    telemetry.NewRegistry(),
		grace:  time.Duration(cfg.Admin.ShutdownGraceMs) * time.Millisecond,
		done:   make(chan struct{}),

		disableExpress: o.DisableExpressLane,
	}
	defer func() {
		if err != nil {
			p.abort()
		}
	}()
	root := p.reg.Scope()
	telemetry.RegisterProcessGauges(root)
	for _, w := range EdgeWarnings(cfg) {
		p.log.Warn(w)
	}
	env := naming.Env{Ctx: ctx, Logger: o.Logger}

	namers, namerClosers, err := naming.MountNamers(env, root, cfg.Namers)
	p.closers = append(p.closers, namerClosers...)
	if err != nil {
		return nil, err
	}
	env.Namers = namers // routers' transformers bind /#/ paths through them (io.l5d.replace)

	var adminHandlers []telemetry.AdminHandler
	var recorders recorderList
	var tms telemetry.Telemeters
	for i, t := range cfg.Telemetry {
		tm, terr := t.Value.NewTelemeter(telemetry.TelemeterEnv{Ctx: ctx, Registry: p.reg, Logger: o.Logger.With("telemeter", t.Kind)})
		if terr != nil {
			return nil, fmt.Errorf("telemetry[%d] (%s): %w", i, t.Kind, terr)
		}
		p.closers = append(p.closers, tm.Close)
		tms = append(tms, tm)
		adminHandlers = append(adminHandlers, tm.AdminHandlers()...)
		if rr, ok := tm.(telemetry.RequestRecorder); ok {
			recorders = append(recorders, rr)
		}
	}

	p.tracers = tracerFactory(tms)

	var infos []admin.RouterInfo
	var httpRouters []*router.Router
	for i, rc := range cfg.Routers {
		if h2r, ok := rc.Value.(*H2Router); ok {
			h2rt, info, rerr := p.startH2Router(ctx, h2r, namers, env)
			if rerr != nil {
				return nil, fmt.Errorf("routers[%d] (%s): %w", i, h2r.Label, rerr)
			}
			infos = append(infos, info)
			httpRouters = append(httpRouters, h2rt)
			continue
		}
		if tr, ok := rc.Value.(*ThriftRouter); ok {
			trt, info, rerr := p.startThriftRouter(ctx, tr, namers, env)
			if rerr != nil {
				return nil, fmt.Errorf("routers[%d] (%s): %w", i, tr.Label, rerr)
			}
			infos = append(infos, info)
			httpRouters = append(httpRouters, trt)
			continue
		}
		if tm, ok := rc.Value.(*ThriftMuxRouter); ok {
			tmrt, info, rerr := p.startThriftMuxRouter(ctx, tm, namers, env)
			if rerr != nil {
				return nil, fmt.Errorf("routers[%d] (%s): %w", i, tm.Label, rerr)
			}
			infos = append(infos, info)
			httpRouters = append(httpRouters, tmrt)
			continue
		}
		hr, ok := rc.Value.(*HTTPRouter)
		if !ok {
			return nil, fmt.Errorf("routers[%d]: protocol %s is not supported by this version yet", i, rc.Kind)
		}
		rt, info, rerr := p.startHTTPRouter(ctx, hr, namers, env, recorders.recorder())
		if rerr != nil {
			return nil, fmt.Errorf("routers[%d] (%s): %w", i, hr.Label, rerr)
		}
		httpRouters = append(httpRouters, rt)
		infos = append(infos, info)
	}
	if err := p.startAnnouncers(cfg); err != nil {
		return nil, err
	}

	var sec *admin.Security
	if as := cfg.Admin.Security; as != nil {
		var white, black []string
		for _, x := range as.PathWhitelist {
			white = append(white, x.Text)
		}
		for _, x := range as.PathBlacklist {
			black = append(black, x.Text)
		}
		if sec, err = admin.NewSecurity(as.UIEnabled, as.ControlEnabled, as.DiagnosticsEnabled, white, black); err != nil {
			return nil, fmt.Errorf("admin.security: %w", err)
		}
	}
	adm := admin.New(admin.Params{
		Security:  sec,
		Registry:  p.reg,
		Config:    configJSON(o.Text),
		Routers:   infos,
		Shutdown:  func() { _ = p.Stop() },
		Dashboard: dashboard.Handler(),
		Logger:    o.Logger,
		// POST /admin/shutdown?grace=<duration> (spec headers-admin.md §5).
		ShutdownGrace: func(grace time.Duration) { _ = p.StopGrace(grace) },
		LogLevel:      o.LogLevel,
	})
	mountStatePages(adm, httpRouters, namers)
	mountAnnouncerPage(adm, p.ann)
	if err := p.ann.announce(); err != nil {
		return nil, err
	}
	for _, h := range adminHandlers {
		adm.Handle(h.Path, h.Handler)
	}
	l, lerr := listen("admin", cfg.Admin.Addr(), adm)
	if lerr != nil {
		return nil, lerr
	}
	if err := serveAdminTLS(ctx, l, cfg.Admin.TLS, o.Logger); err != nil {
		l.ln.Close()
		return nil, fmt.Errorf("admin.tls: %w", err)
	}
	p.admin = l
	for _, s := range append(p.servers, p.admin) {
		go p.serve(s)
	}
	return p, nil
}

// recorderList fans records out to every io.l5d.recentRequests telemeter.
type recorderList []telemetry.RequestRecorder

func (rs recorderList) recorder() telemetry.RequestRecorder {
	switch len(rs) {
	case 0:
		return nil
	case 1:
		return rs[0]
	}
	return rs
}

// Record implements telemetry.RequestRecorder.
func (rs recorderList) Record(r telemetry.RequestRecord) {
	for _, x := range rs {
		x.Record(r)
	}
}

func (p *Process) startHTTPRouter(ctx context.Context, hr *HTTPRouter, namers []naming.MountedNamer, env naming.Env, rec telemetry.RequestRecorder) (*router.Router, admin.RouterInfo, error) {
	label := hr.Label
	log := p.log.With("router", label)
	warnings, err := checkHTTPRouter(hr)
	if err != nil {
		return nil, admin.RouterInfo{}, err
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	ienv := naming.InterpreterEnv{Env: env, Namers: namers, Label: label}
	ienv.Logger = log
	// rt/<router>/interpreter/<kind>/... (spec headers-admin.md §6.1).
	ienv.Scope = telemetry.RouterScope(p.reg.Scope(), label).Scope("interpreter", hr.Interpreter.Kind)
	interp, err := hr.Interpreter.Value.NewInterpreter(ienv)
	if err != nil {
		return nil, admin.RouterInfo{}, fmt.Errorf("interpreter %s: %w", hr.Interpreter.Kind, err)
	}
	idEnv := proxy.IdentifierEnv{Ctx: ctx, Logger: log, DstPrefix: hr.DstPrefix.Path, Label: label}
	var ids proxy.Identifiers
	for i, k := range hr.Identifier {
		id, err := k.Value.NewIdentifier(idEnv)
		if err != nil {
			return nil, admin.RouterInfo{}, fmt.Errorf("identifier[%d] (%s): %w", i, k.Kind, err)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		id, _ := (&http1.HeaderTokenConfig{Header: "Host"}).NewIdentifier(idEnv)
		ids = append(ids, id)
	}
	scope := telemetry.RouterScope(p.reg.Scope(), label)
	if hr.Originator {
		scope.Gauge("originator", func() float64 { return 1 })
	}
	pol := newPolicies(hr, scope, log.Warn)
	if err := checkClientTLS(&hr.Client, func(c *HTTPClientParams) *ClientTLS { return c.TLS }, alpnHTTP1); err != nil {
		return nil, admin.RouterInfo{}, err
	}
	if policyHasTLS(&hr.Client, hr.Client.Global.TLS) {
		pol.tlsFor = newClientTLSChooser(ctx, func(id dtab.Path) *ClientTLS { return hr.Client.For(id).TLS }, alpnHTTP1, log)
	}
	tr, err := p.tracers.NewTracer(telemetry.TracerOptions{Router: label, Propagator: hr.TracePropagator.Kind})
	if err != nil {
		return nil, admin.RouterInfo{}, fmt.Errorf("tracePropagator: %w", err)
	}
	conns := new(endpointConns)
	pol.wrapConn = conns.wrapConn
	rt := router.New(router.Params{
		Label:          label,
		Dtab:           hr.Dtab.Dtab,
		Interpreter:    interp,
		BindingTimeout: time.Duration(hr.BindingTimeoutMs) * time.Millisecond,
		IdleTTL:        time.Duration(hr.BindingCache.IdleTTLSecs) * time.Second,
		Scope:          scope,
		Service:        pol.service,
		Client:         conns.countConns(scope, pol.client),
		NewTransport:   func(addr string) router.Transport { return traceTransport(tr, pol.transport(addr)) },
	})
	p.routers = append(p.routers, rt)
	var alog *http1.AccessLog
	if hr.HTTPAccessLog != "" {
		if alog, err = http1.OpenAccessLog(hr.HTTPAccessLog, hr.HTTPAccessLogAppend); err != nil {
			return nil, admin.RouterInfo{}, err
		}
		p.closers = append(p.closers, alog.Close)
	}
	// The express lane needs plain HTTP/1.1 endpoint clients (client TLS
	// is chosen per request) and a tracer that can trace a hop without
	// the request objects.
	var express *http1.ExpressParams
	if eh, ok := tr.(interface {
		ExpressHop(ctxTrace, sample string) (string, int, bool)
	}); ok && !p.disableExpress && pol.tlsFor == nil {
		express = &http1.ExpressParams{Trace: eh.ExpressHop}
	}
	xfcc, _ := forwardsClientCert(&hr.Client, hr.Client.Global.ForwardClientCert)
	for i := range hr.Servers {
		s := &hr.Servers[i]
		tlsConf, err := newServerTLS(ctx, s.TLS, alpnHTTP1, log)
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
		h := http1.NewHandler(http1.HandlerParams{
			Router:                rt,
			Identifier:            ids,
			ClearContext:          s.ClearContext,
			MaxConcurrentRequests: s.MaxConcurrentRequests,
			MaxCallDepth:          s.MaxCallDepth,
			MaxHeadersKB:          hr.MaxHeadersKB,
			MaxErrResponseKB:      hr.MaxErrResponseKB,
			Scope:                 sscope,
			Logger:                log,
			Recorder:              rec,
			AccessLog:             alog,
			Tracing:               true,
			Label:                 label,
			Addr:                  ln.Addr().String(),
			Edge:                  serverEdge(label, s.AddForwardedHeader, s.TimestampHeader, xfcc),
			Express:               express,
		})
		idle, life := serverSession(s.ServerSession, 10*time.Minute)
		srv := http1.NewServer(traceServer(tr, s.ClearContext, hr.Dtab.Dtab, h), &http.Server{
			ReadHeaderTimeout: http1.DefaultReadHeaderTimeout,
			IdleTimeout:       idle,
			MaxHeaderBytes:    (hr.MaxHeadersKB + hr.MaxInitialLineKB) << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}, log)
		srv.SetLifeTime(life)
		srv.SetExpress(h)
		p.servers = append(p.servers, &listener{name: label + " " + ln.Addr().String(), ln: ln, srv: srv})
	}
	return rt, admin.RouterInfo{Label: label, Dtab: hr.Dtab.Dtab, Interpreter: interp}, nil
}

func listen(name, addr string, h http.Handler) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &listener{name: name, ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}}, nil
}

func (p *Process) serve(l *listener) {
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		p.log.Error("server stopped", "server", l.name, "err", err)
	}
}

// AdminAddr returns the admin server's address.
func (p *Process) AdminAddr() string { return p.admin.ln.Addr().String() }

// ServerAddrs returns the router servers' addresses, in config order.
func (p *Process) ServerAddrs() []string {
	out := make([]string, len(p.servers))
	for i, s := range p.servers {
		out[i] = s.ln.Addr().String()
	}
	return out
}

// Registry returns the process's metrics.
func (p *Process) Registry() *telemetry.Registry { return p.reg }

// Done is closed once the process has stopped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop drains the process: listeners stop accepting, in-flight requests
// get up to admin.shutdownGraceMs to finish, then routers, namers and
// telemeters are closed.
func (p *Process) Stop() error { return p.StopGrace(p.grace) }

// StopGrace is Stop with grace instead of admin.shutdownGraceMs bounding
// the drain (POST /admin/shutdown?grace=). Only the first Stop or
// StopGrace call stops the process; later ones wait for it.
func (p *Process) StopGrace(grace time.Duration) error {
	p.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		p.ann.withdraw(ctx) // before the servers stop accepting (announce.go)
		var wg sync.WaitGroup
		for _, s := range p.servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.srv.Shutdown(ctx); err != nil {
					_ = s.srv.Close()
				}
			}()
		}
		wg.Wait()
		if p.admin != nil {
			actx, acancel := context.WithTimeout(context.Background(), time.Second)
			_ = p.admin.srv.Shutdown(actx)
			acancel()
		}
		p.abort()
		close(p.done)
	})
	return p.stopErr
}

// abort closes routers, namers and telemeters without draining.
func (p *Process) abort() {
	for _, rt := range p.routers {
		_ = rt.Close()
	}
	for _, c := range p.closers {
		if err := c(); err != nil {
			p.log.Warn("closing", "err", err)
		}
	}
	for _, s := range p.servers {
		_ = s.ln.Close()
	}
	p.cancel()
}

// configJSON renders the configuration text as JSON for /config.json.
func configJSON(text []byte) any {
	var v any
	if err := yaml.Unmarshal(text, &v); err != nil {
		return map[string]string{"error": "configuration is not valid YAML/JSON: " + err.Error()}
	}
	return json.RawMessage(mustJSON(v))
}

func mustJSON(v any) []byte {
	// Without HTML escaping, so that dtabs read "=>" as in Linkerd.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(strconv.Quote(err.Error()))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
