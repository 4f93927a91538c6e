package client

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
	"github.com/linnet-mesh/linnet/internal/watch"

	_ "github.com/linnet-mesh/linnet/internal/namer/fs"
	_ "github.com/linnet-mesh/linnet/internal/storage/memory"
)

// Routers reach a namerd whose httpController serves TLS; a router that
// expects another name gets nothing.
func TestInterpreterOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	srv := ca.Issue("namerd", "namerd.mesh.test")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "world"), []byte("127.0.0.1 7000\n"), 0o644)
	text := fmt.Sprintf(`admin: {port: 0}
storage:
  kind: io.l5d.inMemory
  namespaces:
    default: /svc => /#/io.l5d.fs
namers:
- kind: io.l5d.fs
  rootDir: %s
interfaces:
- kind: io.l5d.httpController
  port: 0
  tls:
    certPath: %s
    keyPath: %s
`, dir, srv.CertPath, srv.KeyPath)
	var cfg namerd.Config
	if err := config.Load([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	p, err := namerd.Start(context.Background(), &cfg, namerd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	_, port, _ := net.SplitHostPort(p.InterfaceAddrs()[0])

	interp := func(commonName string) naming.Interpreter {
		var c struct {
			Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
		}
		text := fmt.Sprintf("interpreter:\n  kind: io.l5d.namerd.http\n  experimental: true\n  dst: /$/inet/127.0.0.1/%s\n  retry: {baseSeconds: 0.05, maxSeconds: 0.2}\n  tls:\n    commonName: %s\n    trustCerts: [%s]\n", port, commonName, ca.CertPath)
		if err := config.Load([]byte(text), &c); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		in, err := c.Interpreter.Value.NewInterpreter(naming.InterpreterEnv{Env: naming.Env{Ctx: ctx}})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}

	f := followBinding(t, interp("namerd.mesh.test").Bind(nil, dtab.MustParsePath("/svc/world")))
	f.await(t, "/#/io.l5d.fs/world@127.0.0.1:7000", 5*time.Second)

	wrong := interp("someone-else.test").Bind(nil, dtab.MustParsePath("/svc/world"))
	cancel := wrong.Subscribe(func(watch.Activity[naming.BoundTree]) {})
	defer cancel()
	time.Sleep(500 * time.Millisecond)
	if a := wrong.Get(); a.State != watch.Pending {
		t.Fatalf("a client expecting another certificate name got %v", a)
	}
}
