package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-mesh/linnet/internal/demo"
	"github.com/linnet-mesh/linnet/internal/routerd"
)

func init() {
	addCommand(func(s IO) *cobra.Command {
		var l demo.Layout
		var appPorts [3]int
		var verbose bool
		cmd := &cobra.Command{
			Use:   "demo",
			Short: "Run the Linkerd walkthrough (hello/world, two routers) on this machine",
			Long: `Run the hello/world walkthrough on one machine, without Kubernetes: the
hello service (which calls world through the outgoing router), world-v1
("world"), world-v2 ("earth"), an io.l5d.fs directory naming them, and the
walkthrough's outgoing and incoming routers with their admin server.
Ctrl-C stops everything.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runDemo(cmd.Context(), s, l, appPorts, verbose)
			},
		}
		f := cmd.Flags()
		f.IntVar(&l.Outgoing, "outgoing", 4140, "port of the outgoing router")
		f.IntVar(&l.Incoming, "incoming", 4141, "port of the incoming router")
		f.IntVar(&l.Admin, "admin", 9990, "port of the admin server")
		f.IntVar(&appPorts[0], "hello-port", 0, "port of the hello service (0: any free port)")
		f.IntVar(&appPorts[1], "world-v1-port", 0, "port of world-v1 (0: any free port)")
		f.IntVar(&appPorts[2], "world-v2-port", 0, "port of world-v2 (0: any free port)")
		f.BoolVar(&verbose, "verbose", false, "log the routers' debug messages")
		return cmd
	})
}

func runDemo(ctx context.Context, s IO, l demo.Layout, appPorts [3]int, verbose bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))

	dir, err := os.MkdirTemp("", "linnet-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l.RootDir = dir

	hello, err := demo.Hello("world", fmt.Sprintf("http://127.0.0.1:%d", l.Outgoing))
	if err != nil {
		return err
	}
	apps := []struct {
		name string
		port int
	}{{"world-v1", appPorts[1]}, {"world-v2", appPorts[2]}, {"hello", appPorts[0]}}
	var started []*demo.App
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, a := range started {
			_ = a.Close(cctx)
		}
	}()
	for _, a := range apps {
		h := hello
		switch a.name {
		case "world-v1":
			h = demo.World("world")
		case "world-v2":
			h = demo.World("earth")
		}
		app, err := demo.Start(a.name, fmt.Sprintf("127.0.0.1:%d", a.port), h)
		if err != nil {
			return withExit(1, err)
		}
		started = append(started, app)
		if err := l.Register(a.name, app.Addr); err != nil {
			return err
		}
	}

	text := []byte(l.Config())
	cfg, err := routerd.LoadConfig(text)
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	p, err := routerd.Start(ctx, cfg, routerd.Options{Logger: log, Text: text})
	if err != nil {
		return withExit(1, err)
	}
	defer p.Stop()

	fmt.Fprintf(s.Out, "Linnet demo: the walkthrough's hello/world on this machine.\n\n")
	for _, a := range started {
		fmt.Fprintf(s.Out, "  %-9s %s\n", a.Name, a.Addr)
	}
	fmt.Fprintf(s.Out, "  %-9s 127.0.0.1:%d\n  %-9s 127.0.0.1:%d\n  io.l5d.fs %s\n\n",
		"outgoing", l.Outgoing, "incoming", l.Incoming, dir)
	fmt.Fprintf(s.Out, "Admin (dashboard, metrics, delegator): http://127.0.0.1:%d/\n\nTry:\n", l.Admin)
	for _, c := range l.Commands() {
		fmt.Fprintf(s.Out, "  %s\n", c)
	}
	fmt.Fprintf(s.Out, "\nCtrl-C stops everything.\n")
	select {
	case <-ctx.Done():
	case <-p.Done():
	}
	fmt.Fprintln(s.Out, "stopping")
	return nil
}
