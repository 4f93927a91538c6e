// Package inproc runs a real namerd (namerd.Start) inside a test's
// process, for the tests of the interfaces and interpreters that talk to
// it. It is apart from namerdtest because namerd's own tests import
// namerdtest.
package inproc

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"

	_ "github.com/linnet-mesh/linnet/internal/namer/fs"
	_ "github.com/linnet-mesh/linnet/internal/storage/memory"
)

// Namerd is a namerd that a test can stop and start again on the same
// loopback ports, as a router sees namerd restart.
type Namerd struct {
	t *testing.T
	p *namerd.Process
}

// New returns a stopped namerd that stops, if running, when t ends.
func New(t *testing.T) *Namerd {
	n := &Namerd{t: t}
	t.Cleanup(n.Stop)
	return n
}

// Start runs namerd with the namerd.yaml text.
func (n *Namerd) Start(text string) {
	n.t.Helper()
	var cfg namerd.Config
	if err := config.Load([]byte(text), &cfg); err != nil {
		n.t.Fatal(err)
	}
	var err error
	for range 50 { // the port may linger briefly after a restart
		if n.p, err = namerd.Start(context.Background(), &cfg, namerd.Options{Text: []byte(text)}); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatal(err)
}

// Stop stops namerd if it runs.
func (n *Namerd) Stop() {
	if n.p != nil {
		if err := n.p.Stop(); err != nil {
			n.t.Errorf("namerd stop: %v", err)
		}
		n.p = nil
	}
}

// ServerName is the name in the certificate of StartTLS's namerd.
const ServerName = "namerd.mesh.test"

// StartTLS starts a namerd whose one interface, of kind, serves TLS on a
// free loopback port with a certificate for ServerName; in namespace ns,
// /svc/world binds to /#/io.l5d.fs/world, which is 127.0.0.1:7000. It
// returns the port and the CA certificate that routers must trust.
func StartTLS(t *testing.T, kind, ns string) (port int, caCert string) {
	t.Helper()
	ca := tlstest.NewCA(t, "mesh")
	srv := ca.Issue("namerd", ServerName)
	dir := t.TempDir()
	namerdtest.WriteFile(t, dir, "world", "127.0.0.1 7000\n")
	port = linnettest.FreePort(t)
	New(t).Start(fmt.Sprintf(`admin: {ip: 127.0.0.1, port: 0}
storage:
  kind: io.l5d.inMemory
  namespaces:
    %s: /svc => /#/io.l5d.fs
namers:
- kind: io.l5d.fs
  rootDir: %s
interfaces:
- kind: %s
  ip: 127.0.0.1
  port: %d
  tls:
    certPath: %s
    keyPath: %s
`, ns, dir, kind, port, srv.CertPath, srv.KeyPath))
	return port, ca.CertPath
}
