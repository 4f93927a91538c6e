package mesh

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// A mesh interface serving TLS (offering h2 over ALPN, which gRPC clients
// require) is reached by a router trusting its CA under the right name; a
// router expecting another name gets nothing.
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
    default: /svc => /#/io.l5d.fs
namers:
- kind: io.l5d.fs
  rootDir: %s
interfaces:
- kind: io.l5d.mesh
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

	good := newInterpreterExtra(t, ctx, port, telemetry.Scope{}, fmt.Sprintf("  tls:\n    commonName: namerd.mesh.test\n    trustCerts: [%s]\n", ca.CertPath))
	b := record(t, good.Bind(nil, dtab.MustParsePath("/svc/world")))
	b.await(t, "bind over TLS", 5*time.Second, isLeaf("/#/io.l5d.fs/world"))

	wrong := newInterpreterExtra(t, ctx, port, telemetry.Scope{}, fmt.Sprintf("  tls:\n    commonName: someone-else.test\n    trustCerts: [%s]\n", ca.CertPath))
	w := record(t, wrong.Bind(nil, dtab.MustParsePath("/svc/world")))
	time.Sleep(500 * time.Millisecond)
	if a := w.get(); a.State != watch.Pending {
		t.Fatalf("a router expecting another certificate name got %v", a)
	}
	plain := newInterpreter(t, ctx, port, telemetry.Scope{})
	pl := record(t, plain.Bind(nil, dtab.MustParsePath("/svc/world")))
	time.Sleep(300 * time.Millisecond)
	if a := pl.get(); a.State != watch.Pending {
		t.Fatalf("a plaintext router got %v", a)
	}
}
