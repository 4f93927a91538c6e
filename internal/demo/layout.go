package demo

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Layout is where the demo's routers (and namerd) listen and where its
// io.l5d.fs namer reads addresses.
type Layout struct {
	Outgoing, Incoming, Admin int
	// Namerd is the port of namerd's HTTP API (io.l5d.httpController),
	// which both routers follow with the io.l5d.namerd.http interpreter.
	// 0 means no namerd: each router carries the dtab itself.
	Namerd int
	// NamerdAdmin is the port of namerd's admin server.
	NamerdAdmin int
	// RootDir is the io.l5d.fs directory: one file per service.
	RootDir string
}

// Namespace is the namerd namespace the demo's routers use, as in the
// walkthrough's linkerd-namerd.yml.
const Namespace = "internal"

// The /host/world rules: the walkthrough's (world-v1), its 9:1 canary and
// the full switch to world-v2.
const (
	WorldV1     = "/srv/world-v1"
	WorldCanary = "9 * /srv/world-v1 & 1 * /srv/world-v2"
	WorldV2     = "/srv/world-v2"
)

// Dtab returns the walkthrough's dtab (reference/handbook-linkerd
// namerd.yml's `internal` namespace) with /host/world sent to world, on
// this machine: /#/io.l5d.fs stands in for /#/io.l5d.k8s/default/http, and
// the www.hello.world rule the walkthrough's curl commands rely on is
// added.
func Dtab(world string) string {
	return `/srv        => /#/io.l5d.fs;
/host       => /srv;
/tmp        => /srv;
/svc        => /host;
/host/world => ` + world + `;
/host/www.hello.world => /srv/hello;
`
}

// Config returns the walkthrough's linkerd.yml for one machine: the same
// two routers, with io.l5d.port (to the incoming router) standing in for
// the io.l5d.k8s.daemonset transformer and io.l5d.localhost for
// io.l5d.k8s.localnode. With namerd (linkerd-namerd.yml), both routers
// take their names from namerd's `internal` namespace and have no dtab of
// their own; without it (linkerd.yml), each carries Dtab(WorldV1) and
// binds with the io.l5d.fs namer itself.
func (l Layout) Config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "admin:\n  ip: 127.0.0.1\n  port: %d\n\n", l.Admin)
	if l.Namerd == 0 {
		fmt.Fprintf(&b, "namers:\n- kind: io.l5d.fs\n  rootDir: %s\n\n", strconv.Quote(l.RootDir))
	}
	b.WriteString(`telemetry:
- kind: io.l5d.prometheus
- kind: io.l5d.recentRequests
  sampleRate: 0.25

usage:
  orgId: linnet-demo

routers:
`)
	router := func(label string, port int, transformer string, extra string) {
		fmt.Fprintf(&b, "- protocol: http\n  label: %s\n", label)
		if l.Namerd == 0 {
			fmt.Fprintf(&b, "  dtab: |\n%s  interpreter:\n    kind: default\n", indent(Dtab(WorldV1), "    "))
		} else {
			fmt.Fprintf(&b, "  interpreter:\n    kind: io.l5d.namerd.http\n    experimental: true\n    dst: /$/inet/127.0.0.1/%d\n    namespace: %s\n", l.Namerd, Namespace)
			// namerd is in the same process: reconnect quickly if it
			// restarts (Linkerd's default backoff starts at 5s).
			b.WriteString("    retry:\n      baseSeconds: 0.2\n      maxSeconds: 5\n")
		}
		fmt.Fprintf(&b, "    transformers:\n%s  servers:\n  - port: %d\n    ip: 127.0.0.1\n%s\n", indent(transformer, "    "), port, extra)
	}
	router("outgoing", l.Outgoing, fmt.Sprintf("- kind: io.l5d.port\n  port: %d\n", l.Incoming),
		"  service:\n    responseClassifier:\n      kind: io.l5d.http.retryableRead5XX\n")
	router("incoming", l.Incoming, "- kind: io.l5d.localhost\n", "")
	return b.String()
}

// NamerdConfig returns the walkthrough's namerd.yml for one machine:
// io.l5d.fs stands in for the io.l5d.k8s namer, and an in-memory store,
// seeded with Dtab(WorldV1) in the `internal` namespace (what the
// walkthrough's namerctl job creates), for the io.l5d.k8s store.
func (l Layout) NamerdConfig() string {
	return fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
  shutdownGraceMs: 2000

namers:
- kind: io.l5d.fs
  rootDir: %s

storage:
  kind: io.l5d.inMemory
  namespaces:
    %s: |
%s
interfaces:
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: %d
`, l.NamerdAdmin, strconv.Quote(l.RootDir), Namespace, indent(Dtab(WorldV1), "      "), l.Namerd)
}

func indent(s, pfx string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, ln := range lines {
		if ln != "" {
			b.WriteString(pfx + ln)
		}
	}
	return b.String()
}

// Register writes the io.l5d.fs file of service name: its address.
func (l Layout) Register(name, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.RootDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(host+" "+port+"\n"), 0o644); err != nil {
		return err
	}
	// Rename, so the namer never reads a half-written file.
	return os.Rename(tmp, filepath.Join(l.RootDir, name))
}

// Commands are the walkthrough's commands for this layout.
func (l Layout) Commands() []string {
	return []string{
		fmt.Sprintf(`curl -s -H "Host: www.hello.world" 127.0.0.1:%d`, l.Incoming),
		fmt.Sprintf(`curl -s -H "Host: www.hello.world" -H "l5d-dtab: /host/world => /srv/world-v2;" 127.0.0.1:%d`, l.Incoming),
		fmt.Sprintf(`http_proxy=http://127.0.0.1:%d curl -s http://hello`, l.Incoming),
	}
}

// NamerdCommands are the walkthrough's namerd step (`namerctl dtab update
// internal file`) with Linnet's namerctl-compatible CLI, bin: show the
// dtab, shift 10% of world's traffic to world-v2 with the dtab file
// canary, watch the split, then send everything to world-v2 with the dtab
// file switchAll. Each entry is a comment line (starting with "#") or a
// command.
func (l Layout) NamerdCommands(bin, canary, switchAll string) []string {
	bin = shellQuote(bin)
	base := fmt.Sprintf("--base-url http://127.0.0.1:%d", l.Namerd)
	loop := fmt.Sprintf(`for i in $(seq 20); do curl -s -H "Host: www.hello.world" 127.0.0.1:%d; echo; done`, l.Incoming)
	return []string{
		"# the dtab the routers follow:",
		fmt.Sprintf("%s dtab get %s %s", bin, Namespace, base),
		"# canary: 1 request in 10 to world-v2 (earth):",
		fmt.Sprintf("%s dtab update %s %s %s", bin, Namespace, shellQuote(canary), base),
		loop,
		"# everything to world-v2:",
		fmt.Sprintf("%s dtab update %s %s %s", bin, Namespace, shellQuote(switchAll), base),
		loop,
	}
}

// WriteDtabs writes the canary and full-switch dtab files into dir and
// returns their paths.
func WriteDtabs(dir string) (canary, switchAll string, err error) {
	canary = filepath.Join(dir, "canary.dtab")
	switchAll = filepath.Join(dir, "world-v2.dtab")
	if err := os.WriteFile(canary, []byte(Dtab(WorldCanary)), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(switchAll, []byte(Dtab(WorldV2)), 0o644); err != nil {
		return "", "", err
	}
	return canary, switchAll, nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
