package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/routerd"
	"github.com/linnet-mesh/linnet/internal/telemetry/logging"
)

func init() {
	addCommand(func(s IO) *cobra.Command {
		return &cobra.Command{
			Use:   "router [-validate] [-log.level=LEVEL] [-memory.limit=SIZE] CONFIG",
			Short: "Run a Linkerd 1.x compatible router from a linkerd.yaml",
			Long: `Run the routers, namers, telemeters and admin server a linkerd.yaml
describes. CONFIG is a path, or - to read the configuration from stdin.

Flags use Linkerd's single-dash form:
  -validate           check the configuration and exit (0 when valid)
  -log.level=LEVEL    DEBUG, INFO (default), WARNING or ERROR (also TRACE,
                      CRITICAL, OFF); POST /logging.json changes it at run time
  -memory.limit=SIZE  Go's soft memory limit, e.g. 256MiB, or off (default:
                      GOMEMLIMIT, else 90% of the cgroup's memory limit)
Flags of the JVM Linkerd (-com.twitter.*) are accepted and ignored.

Without an address, a router's server listens on 127.0.0.1 at its protocol's
port (http 4140, h2 4142, thrift 4114, thriftmux 4144) and the admin server
(dashboard, /admin/metrics.json, /delegator) on 127.0.0.1:9990. INFO
logs go to stderr; SIGINT or SIGTERM stops the router. To find
every problem of a config without starting it, use "linnet check CONFIG".`,
			Example: `  linnet router -validate linkerd.yaml
  linnet router -log.level=DEBUG -memory.limit=256MiB linkerd.yaml

  # a minimal linkerd.yaml: Host: world goes to the addresses in disco/world
  namers:
  - kind: io.l5d.fs
    rootDir: disco
  routers:
  - protocol: http
    dtab: /svc => /#/io.l5d.fs;
    servers:
    - port: 4140`,
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runRouter(cmd.Context(), s, args)
			},
		}
	})
}

// routerFlags are the parsed arguments of `linnet router`.
type routerFlags struct {
	validate bool
	level    slog.Level
	path     string
	memLimit string // -memory.limit; empty: the default (memlimit.go)
}

func parseRouterArgs(s IO, args []string) (routerFlags, error) {
	f := routerFlags{level: slog.LevelInfo}
	var paths []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-" || !strings.HasPrefix(a, "-") {
			paths = append(paths, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case name == "validate":
			f.validate = !hasVal || val == "true"
		case name == "log.level":
			if !hasVal {
				if i+1 >= len(args) {
					return f, errors.New("-log.level needs a value (DEBUG, INFO, WARNING, ERROR)")
				}
				i++
				val = args[i]
			}
			lv, err := parseLevel(val)
			if err != nil {
				return f, err
			}
			f.level = lv
		case name == "memory.limit":
			if _, err := parseMemoryLimit(val); err != nil {
				return f, err
			}
			f.memLimit = val
		case strings.HasPrefix(name, "com.twitter."):
			fmt.Fprintf(s.Err, "linnet: ignoring JVM Linkerd flag %s\n", a)
		case name == "h" || name == "help":
			return f, errHelp
		default:
			return f, fmt.Errorf("unknown flag %s (known: -validate, -log.level=LEVEL, -memory.limit=SIZE)", a)
		}
	}
	if len(paths) != 1 {
		return f, fmt.Errorf("expected exactly one configuration path (or - for stdin), got %d", len(paths))
	}
	f.path = paths[0]
	return f, nil
}

var errHelp = errors.New("help requested")

// parseLevel parses -log.level: Linkerd's level names (ALL, TRACE, DEBUG,
// INFO, WARNING, ERROR, CRITICAL, FATAL, OFF), as /logging.json does.
func parseLevel(v string) (slog.Level, error) {
	if strings.TrimSpace(v) == "" {
		return 0, errors.New("-log.level needs a value (DEBUG, INFO, WARNING, ERROR)")
	}
	return logging.ParseLevel(v)
}

func readConfig(s IO, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(s.In)
	}
	return os.ReadFile(path)
}

// loadRouterConfig reads and checks a linkerd.yaml, naming every problem.
func loadRouterConfig(s IO, path string) ([]byte, *routerd.Config, error) {
	text, err := readConfig(s, path)
	if err != nil {
		return nil, nil, withExit(1, fmt.Errorf("reading configuration: %w", err))
	}
	cfg, err := routerd.LoadConfig(text)
	if err != nil {
		if looksLikeNamerd(text) {
			return nil, nil, withExit(1, fmt.Errorf("%s is a namerd.yaml (it has storage or interfaces, and no routers): run it with \"linnet namerd\"", displayName(path)))
		}
		return nil, nil, configError(s, path, err)
	}
	return text, cfg, nil
}

// configError prints every problem of a configuration that failed to load,
// one per line with its place, and returns the command's error (exit 1).
func configError(s IO, path string, err error) error {
	name := displayName(path)
	if errs := config.AsErrors(err); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintf(s.Err, "%s: %v\n", name, e)
		}
		return withExit(1, fmt.Errorf("%s: invalid configuration (%d problem(s))", name, len(errs)))
	}
	return withExit(1, fmt.Errorf("%s: %w", name, err))
}

// displayName is how messages name a configuration path.
func displayName(path string) string {
	if path == "-" {
		return "<stdin>"
	}
	return path
}

// serveUntilStopped waits for a signal (ctx) or for the process to end by
// itself (done, e.g. /admin/shutdown), then stops it.
func serveUntilStopped(ctx context.Context, log *slog.Logger, done <-chan struct{}, stop func() error) {
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-done:
	}
	if err := stop(); err != nil {
		log.Warn("stopping", "err", err)
	}
	log.Info("stopped")
}

func runRouter(ctx context.Context, s IO, args []string) error {
	return runProcess(ctx, s, args, "router", func(s IO, path string) (starter, error) {
		text, cfg, err := loadRouterConfig(s, path)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, log *slog.Logger, level *slog.LevelVar) (running, error) {
			p, err := routerd.Start(ctx, cfg, routerd.Options{Logger: log, Text: text, LogLevel: level})
			if err != nil {
				return nil, err
			}
			log.Info("admin server listening", "addr", p.AdminAddr())
			for _, a := range p.ServerAddrs() {
				log.Info("router server listening", "addr", a)
			}
			return p, nil
		}, nil
	})
}

// starter starts a loaded configuration; running is what it started.
type (
	starter func(ctx context.Context, log *slog.Logger, level *slog.LevelVar) (running, error)
	running interface {
		Done() <-chan struct{}
		Stop() error
	}
)

// runProcess is `linnet router` and `linnet namerd`: Linkerd's flags, the
// configuration loaded and checked (load; -validate stops there), logging
// at -log.level, the memory limit, then the process started and served
// until a signal or /admin/shutdown stops it.
func runProcess(ctx context.Context, s IO, args []string, name string, load func(s IO, path string) (starter, error)) error {
	f, err := parseRouterArgs(s, args)
	if errors.Is(err, errHelp) {
		return cobraHelp(s, name)
	}
	if err != nil {
		return withExit(2, err)
	}
	start, err := load(s, f.path)
	if err != nil {
		return err
	}
	if f.validate {
		fmt.Fprintln(s.Out, "configuration is valid")
		return nil
	}
	// The level is a LevelVar shared with the admin server's /logging.json,
	// so that it can be changed while the process runs.
	level := new(slog.LevelVar)
	level.Set(f.level)
	log := logging.New(s.Err, logging.Options{Level: level})
	lim, err := applyMemoryLimit(f.memLimit)
	if err != nil {
		return withExit(2, err)
	}
	log.Info("memory limit", "limit", lim)
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := start(ctx, log, level)
	if err != nil {
		return withExit(1, err)
	}
	serveUntilStopped(ctx, log, p.Done(), p.Stop)
	return nil
}

// cobraHelp prints a subcommand's help.
func cobraHelp(s IO, name string) error {
	root := NewRoot(s)
	for _, c := range root.Commands() {
		if c.Name() == name {
			return c.Help()
		}
	}
	return nil
}
