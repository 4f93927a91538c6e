package namerd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/namerd/thrift"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// Options are the process-level settings of Start.
type Options struct {
	Logger *slog.Logger
	// Text is the configuration as given, re-rendered as /config.json.
	Text []byte
	// LogLevel, when set, is the level of Logger (the CLI's -log.level):
	// the admin server's /logging and /logging.json show and change it.
	LogLevel *slog.LevelVar
}

// Process is a running namerd: its store, namers, interfaces and admin
// server.
type Process struct {
	log        *slog.Logger
	cancel     context.CancelFunc
	reg        *telemetry.Registry
	grace      time.Duration
	store      storage.Store
	controller *Controller
	servers    []*listener
	admin      *listener
	closers    []func() error

	done     chan struct{}
	stopOnce sync.Once
	stopErr  error
}

type listener struct {
	name string
	srv  server
	ln   net.Listener
}

// server is what a listener runs: an *http.Server, the thrift
// interface's server, or a Servable's.
type server = Server

// Start opens the store, builds the namers and starts serving every
// interface and the admin server. Stop (or POST /admin/shutdown) ends it.
func Start(ctx context.Context, cfg *Config, o Options) (p *Process, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	p = &Process{
		log:    o.Logger,
		cancel: cancel,
		reg:    telemetry.NewRegistry(),
		grace:  time.Duration(cfg.Admin.ShutdownGraceMs) * time.Millisecond,
		done:   make(chan struct{}),
	}
	self := p // the error returns below set p to nil
	defer func() {
		if err != nil {
			self.abort()
		}
	}()
	root := p.reg.Scope()
	for _, w := range Warnings(cfg) {
		p.log.Warn(w)
	}

	store, err := cfg.Storage.Value.NewStore(storage.Env{Ctx: ctx, Logger: o.Logger.With("storage", cfg.Storage.Kind)})
	if err != nil {
		return nil, fmt.Errorf("storage (%s): %w", cfg.Storage.Kind, err)
	}
	p.closers = append(p.closers, store.Close)
	// Everything observes the store through one tracker, so that dtab
	// reads know which namespaces are watched (see currentDtab).
	store = trackWatches(store)
	p.store = store

	env := naming.Env{Ctx: ctx, Logger: o.Logger}
	namers, namerClosers, err := naming.MountNamers(env, root, cfg.Namers)
	p.closers = append(p.closers, namerClosers...)
	if err != nil {
		return nil, err
	}

	var adminHandlers []telemetry.AdminHandler
	for i, t := range cfg.Telemetry {
		tm, terr := t.Value.NewTelemeter(telemetry.TelemeterEnv{Ctx: ctx, Registry: p.reg, Logger: o.Logger.With("telemeter", t.Kind)})
		if terr != nil {
			return nil, fmt.Errorf("telemetry[%d] (%s): %w", i, t.Kind, terr)
		}
		p.closers = append(p.closers, tm.Close)
		adminHandlers = append(adminHandlers, tm.AdminHandlers()...)
	}

	for i, ifc := range cfg.Interfaces {
		switch c := ifc.Value.(type) {
		case *HTTPControllerConfig:
			if p.controller == nil {
				p.controller = NewController(store, namers, root.Scope("interface", HTTPControllerKind), o.Logger.With("interface", HTTPControllerKind))
			}
			l, lerr := listen(ctx, fmt.Sprintf("interfaces[%d] (%s)", i, ifc.Kind), c.Addr(), c.TLS, p.controller, o.Logger)
			if lerr != nil {
				return nil, lerr
			}
			p.servers = append(p.servers, l)
		case *ThriftInterfaceConfig:
			if p.controller == nil {
				p.controller = NewController(store, namers, root.Scope("interface", HTTPControllerKind), o.Logger.With("interface", HTTPControllerKind))
			}
			name := fmt.Sprintf("interfaces[%d] (%s)", i, ifc.Kind)
			srv := thrift.NewServer(thrift.Options{
				Store:       store,
				Interpreter: p.controller.Interpreter(),
				Config:      c.InterfaceConfig,
				Logger:      o.Logger.With("interface", ifc.Kind),
			})
			l, lerr := listenServer(ctx, name, c.Addr(), c.TLS, srv, o.Logger)
			if lerr != nil {
				_ = srv.Close()
				return nil, lerr
			}
			p.servers = append(p.servers, l)
		case Servable:
			if p.controller == nil {
				p.controller = NewController(store, namers, root.Scope("interface", HTTPControllerKind), o.Logger.With("interface", HTTPControllerKind))
			}
			name := fmt.Sprintf("interfaces[%d] (%s)", i, ifc.Kind)
			srv, serr := c.NewServer(ServeEnv{
				Ctx:         ctx,
				Store:       store,
				Interpreter: p.controller.Interpreter(),
				Scope:       root.Scope("interface", ifc.Kind),
				Logger:      o.Logger.With("interface", ifc.Kind),
			})
			if serr != nil {
				return nil, fmt.Errorf("%s: %w", name, serr)
			}
			l, lerr := listenServer(ctx, name, c.Common().Addr(), c.Common().TLS, srv, o.Logger, c.NextProtos()...)
			if lerr != nil {
				_ = srv.Close()
				return nil, lerr
			}
			p.servers = append(p.servers, l)
		default:
			return nil, fmt.Errorf("interfaces[%d]: kind %s is not supported by this version", i, ifc.Kind)
		}
	}
	if p.controller == nil {
		// The admin page and delegator still need one.
		p.controller = NewController(store, namers, root.Scope("interface", HTTPControllerKind), o.Logger)
	}

	adm := admin.New(admin.Params{
		Registry:  p.reg,
		Config:    configJSON(o.Text),
		Shutdown:  func() { _ = p.Stop() },
		Dashboard: NewUI(store, o.Logger),
		Logger:    o.Logger,
		// POST /admin/shutdown?grace=<duration> (spec headers-admin.md §5).
		ShutdownGrace: func(grace time.Duration) { _ = p.StopGrace(grace) },
		LogLevel:      o.LogLevel,
	})
	adm.Handle("/dtab/delegator.json", DelegatorHandler(p.controller))
	mountNamerState(adm, namers)
	for _, h := range adminHandlers {
		adm.Handle(h.Path, h.Handler)
	}
	l, lerr := listen(ctx, "admin", cfg.Admin.Addr(), cfg.Admin.TLS, adm, o.Logger)
	if lerr != nil {
		return nil, lerr
	}
	p.admin = l
	for _, s := range append(p.servers, p.admin) {
		go p.serve(s)
	}
	o.Logger.Info("namerd started", "storage", cfg.Storage.Kind, "admin", p.AdminAddr(), "interfaces", p.InterfaceAddrs())
	return p, nil
}

// mountNamerState serves /namer_state/<prefix>.json for every namer that
// reports its state, as Linkerd's namerd admin and the router's do (spec
// headers-admin.md §5.3): /#/io.l5d.fs → /namer_state/io.l5d.fs.json.
func mountNamerState(adm *admin.Server, namers []naming.MountedNamer) {
	for _, m := range namers {
		if sr, ok := m.Namer.(naming.StateReporter); ok {
			name := strings.TrimPrefix(m.Prefix.String(), "/#/")
			adm.Handle("/namer_state/"+name+".json", admin.JSONState(sr.State))
		}
	}
}

// listen binds addr, with TLS when tc enables it (certificates are
// reloaded when their files change). Requests get contexts derived from
// ctx, so that Stop ends streaming responses instead of waiting for them.
func listen(ctx context.Context, name, addr string, tc *ServerTLS, h http.Handler, log *slog.Logger) (*listener, error) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.With("listener", name).Handler(), slog.LevelWarn),
	}
	return listenServer(ctx, name, addr, tc, srv, log)
}

// listenServer binds addr for srv, with TLS when tc enables it (offering
// nextProtos over ALPN).
func listenServer(ctx context.Context, name, addr string, tc *ServerTLS, srv server, log *slog.Logger, nextProtos ...string) (*listener, error) {
	ts, err := serverTLS(tc, nextProtos...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if ts != nil {
		ln = tls.NewListener(ln, ts.Config())
		go tlsconf.Watch(ctx, ts, 10*time.Second, func(err error) {
			log.Warn("reloading TLS certificates failed; keeping the previous ones", "listener", name, "err", err)
		})
	}
	return &listener{name: name, ln: ln, srv: srv}, nil
}

func (p *Process) serve(l *listener) {
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		p.log.Error("server stopped", "server", l.name, "err", err)
	}
}

// AdminAddr returns the admin server's address.
func (p *Process) AdminAddr() string { return p.admin.ln.Addr().String() }

// InterfaceAddrs returns the addresses of the interfaces, in config order.
func (p *Process) InterfaceAddrs() []string {
	out := make([]string, len(p.servers))
	for i, s := range p.servers {
		out[i] = s.ln.Addr().String()
	}
	return out
}

// Store returns the process's dtab store.
func (p *Process) Store() storage.Store { return p.store }

// Done is closed when the process has stopped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop shuts the servers down (streams are cut: watch responses never end
// by themselves, and clients reconnect), then closes namers and the store.
func (p *Process) Stop() error { return p.StopGrace(p.grace) }

// StopGrace is Stop with grace instead of admin.shutdownGraceMs bounding
// the drain (POST /admin/shutdown?grace=). Only the first Stop or
// StopGrace call stops the process.
func (p *Process) StopGrace(grace time.Duration) error {
	p.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		var errs []error
		// Cancel first: that ends the streaming handlers, which would
		// otherwise hold Shutdown for the whole grace period.
		p.cancel()
		for _, s := range append(p.servers, p.admin) {
			if s == nil {
				continue
			}
			if err := s.srv.Shutdown(ctx); err != nil {
				_ = s.srv.Close()
				if !errors.Is(err, context.DeadlineExceeded) {
					errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
				}
			}
		}
		for i := len(p.closers) - 1; i >= 0; i-- {
			if err := p.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		p.stopErr = errors.Join(errs...)
		close(p.done)
	})
	return p.stopErr
}

// abort undoes a failed Start.
func (p *Process) abort() {
	p.cancel()
	for _, s := range append(p.servers, p.admin) {
		if s != nil {
			_ = s.ln.Close()
			_ = s.srv.Close() // releases what a server started (the thrift interface's caches)
		}
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		_ = p.closers[i]()
	}
}

// configJSON turns the config text into a generic value for /config.json.
func configJSON(text []byte) any {
	var v any
	if err := yaml.Unmarshal(text, &v); err != nil {
		return nil
	}
	if _, err := json.Marshal(v); err != nil {
		return nil
	}
	return v
}
