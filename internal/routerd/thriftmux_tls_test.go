package routerd

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// Thriftmux router to thriftmux router over TLS, both from config text:
// the inner router's server requires a client certificate of its CA; the
// outer router's client dials it with the commonName of an io.l5d.static
// prefix ({service} of the bound name), its CA and a client certificate,
// and carries every call on one TLS Mux session. A client of another CA,
// and one without a certificate, fail to connect: the caller gets an
// exception within a bound (not a hang), and its session stays usable.
// An endpoint that speaks plain framed Thrift over TLS (a thrift router's
// mutual-TLS server) is called in plain Thrift over TLS.
func TestThriftMuxRouterTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	other := tlstest.NewCA(t, "other")
	srvPair := ca.Issue("inner", "inner")
	cliPair := ca.Issue("outer", "outer")
	be := startMuxBackend(t, "be")
	plainBe := startThriftBackend(t, "plain", true, "binary")
	in, err := startFrom(t, fmt.Sprintf(`
admin: {port: 0}
routers:
- protocol: thriftmux
  experimental: true
  label: inner
  dtab: /svc => /$/inet/127.0.0.1/%[1]s;
  servers:
  - port: 0
    tls: {certPath: %[3]s, keyPath: %[4]s, caCertPath: %[5]s, requireClientAuth: true}
- protocol: thrift
  label: innerplain
  dtab: /svc => /$/inet/127.0.0.1/%[2]s;
  servers:
  - port: 0
    tls: {certPath: %[3]s, keyPath: %[4]s, caCertPath: %[5]s, requireClientAuth: true}
`, be.port, plainBe.port, srvPair.CertPath, srvPair.KeyPath, ca.CertPath))
	if err != nil {
		t.Fatal(err)
	}
	inAddr := in.ServerAddrs()[0]
	dir := t.TempDir()
	for name, addr := range map[string]string{"inner": inAddr, "plain": in.ServerAddrs()[1]} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Replace(addr, ":", " ", 1)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := startFrom(t, fmt.Sprintf(`
admin: {port: 0}
namers:
- kind: io.l5d.fs
  rootDir: %[1]s
routers:
- protocol: thriftmux
  experimental: true
  label: good
  dtab: /svc => /#/io.l5d.fs/inner;
  servers: [{port: 0}]
  client:
    kind: io.l5d.static
    configs:
    - prefix: /#/io.l5d.fs/{service}
      tls:
        commonName: "{service}"
        trustCerts: [%[2]s]
        clientAuth: {certPath: %[3]s, keyPath: %[4]s}
- protocol: thriftmux
  experimental: true
  label: wrongca
  dtab: /svc => /#/io.l5d.fs/inner;
  servers: [{port: 0}]
  client:
    tls: {commonName: inner, trustCerts: [%[5]s], clientAuth: {certPath: %[3]s, keyPath: %[4]s}}
- protocol: thriftmux
  experimental: true
  label: nocert
  dtab: /svc => /#/io.l5d.fs/inner;
  servers: [{port: 0}]
  client:
    tls: {commonName: inner, trustCerts: [%[2]s]}
- protocol: thriftmux
  experimental: true
  label: plain
  dtab: /svc => /#/io.l5d.fs/plain;
  servers: [{port: 0}]
  client:
    tls: {commonName: inner, trustCerts: [%[2]s], clientAuth: {certPath: %[3]s, keyPath: %[4]s}}
`, dir, ca.CertPath, cliPair.CertPath, cliPair.KeyPath, other.CertPath))
	if err != nil {
		t.Fatal(err)
	}
	addrs := out.ServerAddrs()
	ctx := context.Background()

	good := dialMux(t, addrs[0])
	for i := range 3 {
		msg := fmt.Sprintf("tls%d", i)
		if got, err := good.call(ctx, nil, "echo", msg); err != nil || got != "be:"+msg {
			t.Fatalf("router → TLS → router: %q, %v", got, err)
		}
	}
	// One TLS session carried every call, and it is Mux: the inner
	// server's sessions, not plain Thrift connections.
	_, inPort, _ := net.SplitHostPort(inAddr)
	if n := thriftMetrics(t, in)["rt/inner/server/127.0.0.1/"+inPort+"/connects"]; n != 1 {
		t.Errorf("the inner server accepted %v connections for 3 calls; want 1", n)
	}
	if got := be.calls.Load(); got != 3 {
		t.Errorf("the backend served %d calls; want 3", got)
	}

	// A plain Thrift endpoint over TLS: the Mux probe fails, the calls go
	// in framed Thrift, over TLS with the client certificate.
	plain := dialMux(t, addrs[3])
	for i := range 2 {
		msg := fmt.Sprintf("fb%d", i)
		if got, err := plain.call(ctx, nil, "echo", msg); err != nil || !strings.HasPrefix(got, "plain:"+msg) {
			t.Fatalf("router → TLS → thrift router: %q, %v; want plain:%s…", got, err, msg)
		}
	}

	for _, c := range []struct {
		label, addr, want string
	}{
		{"wrongca", addrs[1], "certificate signed by unknown authority"},
		{"nocert", addrs[2], "certificate required"},
	} {
		t.Run(c.label, func(t *testing.T) {
			cl := dialMux(t, c.addr)
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			start := time.Now()
			_, err := cl.call(cctx, nil, "echo", "x")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want an exception containing %q", err, c.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the exception took %v", d)
			}
			// The caller's session stays usable: the next call gets its
			// own answer.
			if _, err := cl.call(cctx, nil, "echo", "y"); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("second call: %v; want the exception again", err)
			}
		})
	}
	if got := be.calls.Load(); got != 3 {
		t.Errorf("the backend served %d calls; want only the 3 of the good client", got)
	}
}
