package thrift_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Routers reach a thrift interface that serves TLS with Linkerd's
// `tls: {commonName, caCert}`; a router expecting another name gets
// nothing.
func TestInterpreterOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	srv := ca.Issue("namerd", "namerd.mesh.test")
	dir := t.TempDir()
	writeFile(t, dir, "world", "127.0.0.1 7000\n")
	port := freePort(t)
	text := fmt.Sprintf(`admin: {ip: 127.0.0.1, port: 0}
storage:
  kind: io.l5d.inMemory
  namespaces:
    internal: /svc => /#/io.l5d.fs
namers:
- kind: io.l5d.fs
  rootDir: %s
interfaces:
- kind: io.l5d.thriftNameInterpreter
  port: %d
  tls:
    certPath: %s
    keyPath: %s
`, dir, port, srv.CertPath, srv.KeyPath)
	var cfg namerd.Config
	if err := config.Load([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	p, err := namerd.Start(context.Background(), &cfg, namerd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	good := newInterpreter(t, ctx, port, fmt.Sprintf("  tls:\n    commonName: namerd.mesh.test\n    caCert: %s\n", ca.CertPath))
	b := record(t, good.Bind(nil, dtab.MustParsePath("/svc/world")))
	b.await(t, "bind over TLS", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return leafID(a) == "/#/io.l5d.fs/world" })

	wrong := newInterpreter(t, ctx, port, fmt.Sprintf("  tls:\n    commonName: someone-else.test\n    caCert: %s\n", ca.CertPath))
	w := record(t, wrong.Bind(nil, dtab.MustParsePath("/svc/world")))
	time.Sleep(500 * time.Millisecond)
	if a := w.get(); a.State != watch.Pending {
		t.Fatalf("a router expecting another certificate name got %v", a)
	}
}
