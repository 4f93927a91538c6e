package admin

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/logging"
)

// RouterInfo is what the admin pages know about one router.
type RouterInfo struct {
	Label       string
	Dtab        dtab.Dtab
	Interpreter naming.Interpreter
}

// Params configures the admin server.
type Params struct {
	Registry *telemetry.Registry
	// Config is re-serialised as /config.json.
	Config any
	// Routers are listed in the delegator, in configuration order.
	Routers []RouterInfo
	// Shutdown is called (once, in its own goroutine) after POST
	// /admin/shutdown has been answered.
	Shutdown func()
	// ShutdownGrace, when set, is called instead of Shutdown when the
	// POST carries a grace parameter (POST /admin/shutdown?grace=10s):
	// the drain is bounded by that duration rather than by
	// admin.shutdownGraceMs.
	ShutdownGrace func(grace time.Duration)
	// LogLevel, when set, is the process's log level: /logging shows it
	// and /logging.json shows and changes it.
	LogLevel *slog.LevelVar
	// Dashboard, when set, is served at / (and /services).
	Dashboard http.Handler
	// Security, when set, restricts the paths served (admin.security).
	Security *Security
	Logger   *slog.Logger
}

// Server is the admin handler.
type Server struct {
	p     Params
	mux   *http.ServeMux
	h     http.Handler
	mu    sync.Mutex
	paths []string
	once  sync.Once
}

// New returns the admin server handler.
func New(p Params) *Server {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{p: p, mux: http.NewServeMux()}
	s.h = s.mux
	if p.Security != nil {
		s.h = p.Security.wrap(s.mux)
	}
	s.Handle("/admin/ping", http.HandlerFunc(ping))
	s.Handle("/admin", http.HandlerFunc(s.index))
	s.Handle("/admin/index.txt", http.HandlerFunc(s.index))
	s.Handle("/config.json", http.HandlerFunc(s.configJSON))
	if p.Registry != nil {
		s.Handle("/admin/metrics.json", telemetry.MetricsJSONHandler(p.Registry))
	}
	s.Handle("/delegator.json", http.HandlerFunc(s.delegatorJSON))
	s.Handle("/delegator", http.HandlerFunc(s.delegatorPage))
	s.Handle("/admin/shutdown", http.HandlerFunc(s.shutdown))
	s.Handle("/admin/server_info", http.HandlerFunc(serverInfo))
	if p.LogLevel != nil {
		s.Handle("/logging", logging.PageHandler(p.LogLevel))
		s.Handle("/logging.json", logging.Handler(p.LogLevel))
	}
	s.handleDiagnostics()
	s.Handle("/admin/pprof/", http.HandlerFunc(pprofIndex))
	s.Handle("/admin/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	s.Handle("/admin/pprof/profile", http.HandlerFunc(pprof.Profile))
	s.Handle("/admin/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	s.Handle("/admin/pprof/trace", http.HandlerFunc(pprof.Trace))
	if p.Dashboard != nil {
		s.Handle("/", p.Dashboard)
	} else {
		s.Handle("/{$}", http.HandlerFunc(s.index))
	}
	return s
}

// Handle mounts h at the exact path (or, ending in '/', the subtree).
func (s *Server) Handle(path string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mux.Handle(path, h)
	s.paths = append(s.paths, path)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

func ping(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("pong"))
}

// index lists every admin path (/admin, /admin/index.txt).
func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	paths := append([]string(nil), s.paths...)
	s.mu.Unlock()
	sort.Strings(paths)
	w.Header().Set("Content-Type", "text/plain")
	for _, p := range paths {
		if p == "/{$}" {
			p = "/"
		}
		_, _ = w.Write([]byte(p + "\n"))
	}
}

func (s *Server) configJSON(w http.ResponseWriter, _ *http.Request) {
	// Without HTML escaping: dtabs read "=>", not "=\u003e".
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s.p.Config); err != nil {
		http.Error(w, "cannot render the configuration: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) shutdown(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "use POST to shut down", http.StatusMethodNotAllowed)
		return
	}
	stop := s.p.Shutdown
	if v, ok := r.URL.Query()["grace"]; ok {
		grace, err := parseGrace(v[0])
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if s.p.ShutdownGrace != nil {
			stop = func() { s.p.ShutdownGrace(grace) }
		}
		s.p.Logger.Info("shutdown requested", "grace", grace, "from", r.RemoteAddr)
	} else {
		s.p.Logger.Info("shutdown requested", "from", r.RemoteAddr)
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("quitting\n"))
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if stop != nil {
		s.once.Do(func() { go stop() })
	}
}

// Version is the build version shown by /admin/server_info; the CLI sets it.
var Version = "dev"

func serverInfo(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"name": "linnet", "version": Version})
}

func pprofIndex(w http.ResponseWriter, r *http.Request) {
	// net/http/pprof's Index serves named profiles from the path after
	// "/debug/pprof/"; map ours onto it.
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/debug/pprof/" + strings.TrimPrefix(r.URL.Path, "/admin/pprof/")
	pprof.Index(w, r2)
}
