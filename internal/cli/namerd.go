package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/namerd"
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
	// The same flags and life cycle as `linnet router`.
	return runProcess(ctx, s, args, "namerd", func(s IO, path string) (starter, error) {
		text, cfg, err := loadNamerdConfig(s, path)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, log *slog.Logger, level *slog.LevelVar) (running, error) {
			p, err := namerd.Start(ctx, cfg, namerd.Options{Logger: log, Text: text, LogLevel: level})
			if err != nil {
				return nil, err
			}
			log.Info("admin server listening", "addr", p.AdminAddr())
			for _, a := range p.InterfaceAddrs() {
				log.Info("interface listening", "addr", a)
			}
			return p, nil
		}, nil
	})
}
