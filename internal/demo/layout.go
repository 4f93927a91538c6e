package demo

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// Layout is where the demo's routers listen and where its io.l5d.fs
// namer reads addresses.
type Layout struct {
	Outgoing, Incoming, Admin int
	// RootDir is the io.l5d.fs directory: one file per service.
	RootDir string
}

// Config returns the walkthrough's linkerd.yml
// (reference/handbook-linkerd/linkerd.yml) for one machine: the same two
// routers and dtab, with /#/io.l5d.fs standing in for
// /#/io.l5d.k8s/default/http, io.l5d.port (to the incoming router)
// standing in for the io.l5d.k8s.daemonset transformer and
// io.l5d.localhost for io.l5d.k8s.localnode. The dtab adds the
// www.hello.world rule the walkthrough's curl commands rely on.
func (l Layout) Config() string {
	return fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d

namers:
- kind: io.l5d.fs
  rootDir: %s

telemetry:
- kind: io.l5d.prometheus
- kind: io.l5d.recentRequests
  sampleRate: 0.25

usage:
  orgId: linnet-demo

routers:
- protocol: http
  label: outgoing
  dtab: |
    /srv        => /#/io.l5d.fs;
    /host       => /srv;
    /svc        => /host;
    /host/world => /srv/world-v1;
    /host/www.hello.world => /srv/hello;
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.port
      port: %d
  servers:
  - port: %d
    ip: 127.0.0.1
  service:
    responseClassifier:
      kind: io.l5d.http.retryableRead5XX

- protocol: http
  label: incoming
  dtab: |
    /srv        => /#/io.l5d.fs;
    /host       => /srv;
    /svc        => /host;
    /host/world => /srv/world-v1;
    /host/www.hello.world => /srv/hello;
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.localhost
  servers:
  - port: %d
    ip: 127.0.0.1
`, l.Admin, strconv.Quote(l.RootDir), l.Incoming, l.Outgoing, l.Incoming)
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
