// Package cli holds linnet's subcommands. Each subcommand lives in its own
// file and registers a constructor with addCommand in init.
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Version is stamped at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// IO is the standard streams a command uses; tests substitute buffers.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

var commands []func(IO) *cobra.Command

// addCommand registers a subcommand constructor.
func addCommand(f func(IO) *cobra.Command) { commands = append(commands, f) }

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
	// reported means the command already printed err where its users
	// expect it (namerctl prints to stdout), so Main does not repeat it.
	reported bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExit returns err as a command error that makes Main exit with code.
func withExit(code int, err error) error { return &exitError{code: code, err: err} }

// reportedExit is withExit for an error the command has already printed.
func reportedExit(code int, err error) error {
	return &exitError{code: code, err: err, reported: true}
}

// NewRoot builds the root command.
func NewRoot(s IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "linnet",
		Short: "Linnet: a Linkerd 1.x compatible service mesh",
		Long: `Linnet routes HTTP/1.1, HTTP/2, gRPC and Thrift by resolving logical names through
dtabs (delegation tables), exactly as Linkerd 1.x does, and reads the same
linkerd.yaml and namerd.yaml files.`,
		Example: `  linnet demo                      # the hello/world walkthrough on this machine
  linnet check linkerd.yaml        # every problem of a config, with its line
  linnet router linkerd.yaml
  linnet namerd namerd.yaml
  linnet dtab get default --base-url http://127.0.0.1:4180`,
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	for _, f := range commands {
		root.AddCommand(f(s))
	}
	return root
}

// Main runs linnet with args and returns the process exit status.
func Main(args []string, in io.Reader, out, errw io.Writer) int {
	root := NewRoot(IO{In: in, Out: out, Err: errw})
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		var ee *exitError
		if !errors.As(err, &ee) {
			fmt.Fprintln(errw, "linnet:", err)
			return 1
		}
		if !ee.reported {
			fmt.Fprintln(errw, "linnet:", err)
		}
		return ee.code
	}
	return 0
}
