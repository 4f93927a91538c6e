package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/demo"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/routerd"
)

// demoFlags are the settings of `linnet demo`.
type demoFlags struct {
	layout   demo.Layout
	appPorts [3]int // hello, world-v1, world-v2
	noNamerd bool
	verbose  bool
}

func init() {
	addCommand(func(s IO) *cobra.Command {
		var f demoFlags
		cmd := &cobra.Command{
			Use:   "demo",
			Short: "Run the Linkerd walkthrough (hello/world, namerd, two routers) on this machine",
			Long: `Run the hello/world walkthrough on one machine, without Kubernetes: the
hello service (which calls world through the outgoing router), world-v1
("world"), world-v2 ("earth"), an io.l5d.fs directory naming them, namerd
holding the dtab (namespace "internal"), and the walkthrough's outgoing and
incoming routers, which follow namerd, with their admin server.
It prints the walkthrough's commands, including a canary release done by
updating namerd's dtab with ` + "`linnet dtab update`" + `.
--no-namerd runs the routers with their own dtab instead.
It runs in the foreground; Ctrl-C (or SIGTERM) stops everything and removes
its temporary directory.`,
			Example: `  linnet demo
  # in another terminal:
  curl -s -H "Host: www.hello.world" 127.0.0.1:4141
  # with other ports, when 4140, 4141, 4180 or 999x are taken:
  linnet demo --outgoing 5140 --incoming 5141 --admin 5990 --namerd 5180 --namerd-admin 5991`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runDemo(cmd.Context(), s, f)
			},
		}
		fl := cmd.Flags()
		fl.IntVar(&f.layout.Outgoing, "outgoing", 4140, "port of the outgoing router")
		fl.IntVar(&f.layout.Incoming, "incoming", 4141, "port of the incoming router")
		fl.IntVar(&f.layout.Admin, "admin", 9990, "port of the routers' admin server")
		fl.IntVar(&f.layout.Namerd, "namerd", namerd.DefaultControllerPort, "port of namerd's HTTP API (io.l5d.httpController)")
		fl.IntVar(&f.layout.NamerdAdmin, "namerd-admin", namerd.DefaultAdminPort, "port of namerd's admin server")
		fl.BoolVar(&f.noNamerd, "no-namerd", false, "run without namerd: the routers carry the dtab themselves")
		fl.IntVar(&f.appPorts[0], "hello-port", 0, "port of the hello service (0: any free port)")
		fl.IntVar(&f.appPorts[1], "world-v1-port", 0, "port of world-v1 (0: any free port)")
		fl.IntVar(&f.appPorts[2], "world-v2-port", 0, "port of world-v2 (0: any free port)")
		fl.BoolVar(&f.verbose, "verbose", false, "log the routers' and namerd's debug messages")
		return cmd
	})
}

// check names the first bad or clashing port flag.
func (f *demoFlags) check() error {
	type port struct {
		flag string
		n    int
	}
	ports := []port{{"outgoing", f.layout.Outgoing}, {"incoming", f.layout.Incoming}, {"admin", f.layout.Admin}}
	if !f.noNamerd {
		ports = append(ports, port{"namerd", f.layout.Namerd}, port{"namerd-admin", f.layout.NamerdAdmin})
	}
	for i, name := range []string{"hello-port", "world-v1-port", "world-v2-port"} {
		if f.appPorts[i] != 0 { // 0: any free port
			ports = append(ports, port{name, f.appPorts[i]})
		}
	}
	seen := map[int]string{}
	for _, p := range ports {
		if p.n < 1 || p.n > 65535 {
			return fmt.Errorf("--%s: %d is not a TCP port (1-65535)", p.flag, p.n)
		}
		if prev, dup := seen[p.n]; dup {
			return fmt.Errorf("--%s and --%s are both %d", prev, p.flag, p.n)
		}
		seen[p.n] = p.flag
	}
	return nil
}

func runDemo(ctx context.Context, s IO, f demoFlags) error {
	if err := f.check(); err != nil {
		return withExit(2, err)
	}
	l := f.layout
	if f.noNamerd {
		l.Namerd, l.NamerdAdmin = 0, 0
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))

	// Everything the demo writes lives in one temporary directory: the
	// io.l5d.fs directory (disco/) and the dtab files for namerd.
	dir, err := os.MkdirTemp("", "linnet-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l.RootDir = filepath.Join(dir, "disco")
	if err := os.Mkdir(l.RootDir, 0o755); err != nil {
		return err
	}

	hello, err := demo.Hello("world", fmt.Sprintf("http://127.0.0.1:%d", l.Outgoing))
	if err != nil {
		return err
	}
	apps := []struct {
		name string
		port int
	}{{"world-v1", f.appPorts[1]}, {"world-v2", f.appPorts[2]}, {"hello", f.appPorts[0]}}
	var started []*demo.App
	defer func() {
		t0 := time.Now()
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, a := range started {
			_ = a.Close(cctx)
		}
		log.Debug("services stopped", "took", time.Since(t0))
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

	// namerd starts before the routers, which follow it, and stops after
	// them (deferred calls run in reverse).
	var nd *namerd.Process
	var canary, switchAll string
	if l.Namerd != 0 {
		text := []byte(l.NamerdConfig())
		var cfg namerd.Config
		if err := config.Load(text, &cfg); err != nil {
			return fmt.Errorf("demo namerd configuration: %w", err)
		}
		nd, err = namerd.Start(ctx, &cfg, namerd.Options{Logger: log.With("role", "namerd"), Text: text})
		if err != nil {
			return withExit(1, fmt.Errorf("namerd (ports set by --namerd and --namerd-admin, or --no-namerd): %w", err))
		}
		defer func() {
			t0 := time.Now()
			if err := nd.Stop(); err != nil {
				log.Warn("stopping namerd", "err", err)
			}
			log.Debug("namerd stopped", "took", time.Since(t0))
		}()
		if canary, switchAll, err = demo.WriteDtabs(dir); err != nil {
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
		return withExit(1, fmt.Errorf("routers (ports set by --outgoing, --incoming and --admin): %w", err))
	}
	defer func() {
		t0 := time.Now()
		_ = p.Stop()
		log.Debug("routers stopped", "took", time.Since(t0))
	}()

	fmt.Fprintf(s.Out, "Linnet demo: the walkthrough's hello/world on this machine.\n\n")
	for _, a := range started {
		fmt.Fprintf(s.Out, "  %-9s %s\n", a.Name, a.Addr)
	}
	fmt.Fprintf(s.Out, "  %-9s 127.0.0.1:%d\n  %-9s 127.0.0.1:%d\n", "outgoing", l.Outgoing, "incoming", l.Incoming)
	if nd != nil {
		fmt.Fprintf(s.Out, "  %-9s 127.0.0.1:%d (namespace %q)\n", "namerd", l.Namerd, demo.Namespace)
	}
	fmt.Fprintf(s.Out, "  io.l5d.fs %s\n\n", l.RootDir)
	fmt.Fprintf(s.Out, "Admin (dashboard, metrics, delegator): http://127.0.0.1:%d/\n\nTry:\n", l.Admin)
	for _, c := range l.Commands() {
		fmt.Fprintf(s.Out, "  %s\n", c)
	}
	var ndDone <-chan struct{}
	if nd != nil {
		ndDone = nd.Done()
		fmt.Fprintf(s.Out, "\nThe routers take their dtab from namerd. Shift traffic as the walkthrough\ndoes with namerctl:\n")
		for _, c := range l.NamerdCommands(demoBinary(), canary, switchAll) {
			fmt.Fprintf(s.Out, "  %s\n", c)
		}
		fmt.Fprintf(s.Out, "\nnamerd admin (dtabs, metrics): http://127.0.0.1:%d/\n", l.NamerdAdmin)
	}
	fmt.Fprintf(s.Out, "\nCtrl-C stops everything.\n")
	select {
	case <-ctx.Done():
	case <-p.Done():
	case <-ndDone:
	}
	fmt.Fprintln(s.Out, "stopping")
	return nil
}

// demoBinary is how to run this binary again from the demo's shell: as
// invoked (bin/linnet under `make demo`), else "linnet".
func demoBinary() string {
	if len(os.Args) > 0 && filepath.Base(os.Args[0]) == "linnet" {
		return os.Args[0]
	}
	return "linnet"
}
