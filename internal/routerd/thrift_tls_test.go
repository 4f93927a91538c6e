package routerd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// Router to router over TLS, both from config text: the inner router's
// thrift server requires a client certificate of its CA; the outer
// router's client dials it with the commonName of an io.l5d.static
// prefix ({service} of the bound name), its CA and a client certificate.
// A client of another CA, and one without a certificate, get an
// exception reply at once (not a hang), on a connection that stays
// usable. A Thrift client of the library also speaks TLS to the inner
// server directly.
func TestThriftRouterTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	other := tlstest.NewCA(t, "other")
	srvPair := ca.Issue("inner", "inner")
	cliPair := ca.Issue("outer", "outer")
	be := startThriftBackend(t, "be", true, "binary")
	in, err := startFrom(t, fmt.Sprintf(`
admin: {port: 0}
routers:
- protocol: thrift
  label: inner
  dtab: /svc => /$/inet/127.0.0.1/%s;
  servers:
  - port: 0
    tls: {certPath: %s, keyPath: %s, caCertPath: %s, requireClientAuth: true}
`, be.port, srvPair.CertPath, srvPair.KeyPath, ca.CertPath))
	if err != nil {
		t.Fatal(err)
	}
	inAddr := in.ServerAddrs()[0]
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inner"), []byte(strings.Replace(inAddr, ":", " ", 1)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := startFrom(t, fmt.Sprintf(`
admin: {port: 0}
namers:
- kind: io.l5d.fs
  rootDir: %[1]s
routers:
- protocol: thrift
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
- protocol: thrift
  label: wrongca
  dtab: /svc => /#/io.l5d.fs/inner;
  servers: [{port: 0}]
  client:
    tls: {commonName: inner, trustCerts: [%[5]s], clientAuth: {certPath: %[3]s, keyPath: %[4]s}}
- protocol: thrift
  label: nocert
  dtab: /svc => /#/io.l5d.fs/inner;
  servers: [{port: 0}]
  client:
    tls: {commonName: inner, trustCerts: [%[2]s]}
`, dir, ca.CertPath, cliPair.CertPath, cliPair.KeyPath, other.CertPath))
	if err != nil {
		t.Fatal(err)
	}
	addrs := out.ServerAddrs()

	good := dialThrift(t, addrs[0], true, "binary")
	for i := range 3 {
		msg := fmt.Sprintf("tls%d", i)
		if got, err := good.call("echo", richArgs(msg)); err != nil || got != "be:"+msg+richSummary {
			t.Fatalf("router → TLS → router: %q, %v", got, err)
		}
	}
	// The TLS connection was pooled and used for every call.
	_, inPort, _ := net.SplitHostPort(inAddr)
	if n := thriftMetrics(t, in)["rt/inner/server/127.0.0.1/"+inPort+"/connects"]; n != 1 {
		t.Errorf("the inner server accepted %v connections for 3 calls; want 1", n)
	}

	for _, c := range []struct {
		label, addr, want string
	}{
		{"wrongca", addrs[1], "certificate signed by unknown authority"},
		{"nocert", addrs[2], "certificate required"},
	} {
		t.Run(c.label, func(t *testing.T) {
			cl := dialThrift(t, c.addr, true, "binary")
			start := time.Now()
			_, err := cl.call("echo", &echoArgs{Msg: "x"})
			var ae thrift.TApplicationException
			if !errors.As(err, &ae) || ae.TypeId() != thrift.INTERNAL_ERROR || !strings.Contains(ae.Error(), c.want) {
				t.Fatalf("err = %v; want an INTERNAL_ERROR exception containing %q", err, c.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the exception took %v", d)
			}
			// Answered in step: the next call gets its own answer.
			if _, err := cl.call("echo", &echoArgs{Msg: "y"}); !errors.As(err, &ae) {
				t.Errorf("second call: %v; want an exception again", err)
			}
		})
	}

	// The library's TLS socket, with a client certificate, straight to
	// the inner router's server.
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(ca.CertPath)
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(cliPair.CertPath, cliPair.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	// The framed transport passes its configuration down to the socket.
	conf := &thrift.TConfiguration{
		ConnectTimeout: 5 * time.Second, SocketTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{RootCAs: pool, ServerName: "inner", Certificates: []tls.Certificate{cert}},
	}
	trans := thrift.NewTFramedTransportConf(thrift.NewTSSLSocketConf(inAddr, conf), conf)
	if err := trans.Open(); err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	prot := protocolFactory("binary").GetProtocol(trans)
	direct := &thriftClient{TStandardClient: thrift.NewTStandardClient(prot, prot), trans: trans}
	if got, err := direct.call("echo", &echoArgs{Msg: "direct"}); err != nil || !strings.HasPrefix(got, "be:direct") {
		t.Errorf("TLS client → router: %q, %v", got, err)
	}
}
