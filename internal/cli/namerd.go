package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/telemetry/logging"
)

func init() {
	addCommand(func(s IO) *cobra.Command {
		return &cobra.Command{
			Use:   "namerd [-validate] [-log.level=LEVEL] [-memory.limit=SIZE] CONFIG",
			Short: "Run namerd (dtab storage and the namerd HTTP API) from a namerd.yaml",
			Long: `Run the dtab store, namers, interfaces (io.l5d.httpController) and admin
server a namerd.yaml describes. CONFIG is a path, or - to read the
configuration from stdin.

Flags use Linkerd's single-dash form:
  -validate           check the configuration and exit (0 when valid)
  -log.level=LEVEL    DEBUG, INFO (default), WARNING or ERROR (also TRACE,
                      CRITICAL, OFF); POST /logging.json changes it at run time
  -memory.limit=SIZE  Go's soft memory limit, e.g. 256MiB, or off (default:
                      GOMEMLIMIT, else 90% of the cgroup's memory limit)
Flags of the JVM namerd (-com.twitter.*) are accepted and ignored.

Without an address, the io.l5d.httpController interface listens on
127.0.0.1:4180 and the admin server on 127.0.0.1:9991. INFO logs go to stderr;
SIGINT or SIGTERM stops namerd.`,
			Example: `  linnet namerd -validate namerd.yaml
  linnet namerd -log.level=DEBUG namerd.yaml

  # a minimal namerd.yaml (dtabs in memory, lost on exit):
  storage:
    kind: io.l5d.inMemory
    namespaces:
      internal: /svc => /#/io.l5d.fs;
  interfaces:
  - kind: io.l5d.httpController`,
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				return runNamerd(cmd.Context(), s, args)
			},
		}
	})
}

// loadNamerdConfig reads and checks a namerd.yaml, naming every problem.
func loadNamerdConfig(s IO, path string) ([]byte, *namerd.Config, error) {
	text, err := readConfig(s, path)
	if err != nil {
		return nil, nil, withExit(1, fmt.Errorf("reading configuration: %w", err))
	}
	var cfg namerd.Config
	if err := config.Load(text, &cfg); err != nil {
		if _, routers := topKeys(text)["routers"]; routers {
			return nil, nil, withExit(1, fmt.Errorf("%s is a linkerd.yaml (it has routers): run it with \"linnet router\"", displayName(path)))
		}
		return nil, nil, configError(s, path, err)
	}
	return text, &cfg, nil
}

func runNamerd(ctx context.Context, s IO, args []string) error {
	f, err := parseRouterArgs(s, args) // same flags as `linnet router`
	if errors.Is(err, errHelp) {
		return cobraHelp(s, "namerd")
	}
	if err != nil {
		return withExit(2, err)
	}
	text, cfg, err := loadNamerdConfig(s, f.path)
	if err != nil {
		return err
	}
	if f.validate {
		fmt.Fprintln(s.Out, "configuration is valid")
		return nil
	}
	// Shared with the admin server's /logging.json (see runRouter).
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
	p, err := namerd.Start(ctx, cfg, namerd.Options{Logger: log, Text: text, LogLevel: level})
	if err != nil {
		return withExit(1, err)
	}
	log.Info("admin server listening", "addr", p.AdminAddr())
	for _, a := range p.InterfaceAddrs() {
		log.Info("interface listening", "addr", a)
	}
	serveUntilStopped(ctx, log, p.Done(), p.Stop)
	return nil
}
