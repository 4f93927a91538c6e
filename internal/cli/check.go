package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/routerd"
)

func init() {
	addCommand(func(s IO) *cobra.Command {
		return &cobra.Command{
			Use:   "check CONFIG",
			Short: "Check a linkerd.yaml without running it",
			Long: `Load and validate a linkerd.yaml (or its JSON form) as "linnet router" would,
and report every problem with its line, or OK. CONFIG is a path, or - for
stdin. Exits 1 when the configuration is invalid.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return runCheck(s, args[0])
			},
		}
	})
}

func runCheck(s IO, path string) error {
	var text []byte
	var err error
	name := path
	if path == "-" {
		name = "<stdin>"
		text, err = io.ReadAll(s.In)
	} else {
		text, err = os.ReadFile(path)
	}
	if err != nil {
		return withExit(1, fmt.Errorf("reading config: %w", err))
	}
	c, err := routerd.LoadConfig(text)
	if err != nil {
		if looksLikeNamerd(text) {
			return withExit(1, fmt.Errorf("%s looks like a namerd.yaml (it has storage/interfaces and no routers); check it with \"linnet namerd -validate\"", name))
		}
		problems := config.AsErrors(err)
		for _, e := range problems {
			loc := name
			if e.Line > 0 {
				loc = fmt.Sprintf("%s:%d", name, e.Line)
			}
			msg := e.Msg
			if e.Path != "" {
				msg = e.Path + ": " + msg
			}
			fmt.Fprintf(s.Out, "%s: %s\n", loc, msg)
		}
		noun := "problem"
		if len(problems) != 1 {
			noun = "problems"
		}
		return withExit(1, fmt.Errorf("%s: %d %s", name, len(problems), noun))
	}
	for _, w := range routerd.EdgeWarnings(c) {
		fmt.Fprintf(s.Out, "%s: warning: %s\n", name, w)
	}
	fmt.Fprintf(s.Out, "%s: OK (%s, %s, %s)\n", name, plural(len(c.Routers), "router"), plural(len(c.Namers), "namer"), plural(len(c.Telemetry), "telemeter"))
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// looksLikeNamerd reports whether text is a namerd configuration.
func looksLikeNamerd(text []byte) bool {
	var top map[string]any
	if config.Load(text, &top) != nil {
		return false
	}
	_, routers := top["routers"]
	_, storage := top["storage"]
	_, interfaces := top["interfaces"]
	return !routers && (storage || interfaces)
}
