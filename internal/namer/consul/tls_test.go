package consul

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/namer/consul/consultest"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// The tls block: the namer talks HTTPS to an agent whose certificate it
// checks against trustCerts and commonName; a wrong commonName fails.
func TestTLSToAgent(t *testing.T) {
	ca := tlstest.NewCA(t, "consul-test")
	server := ca.Issue("server", "consul.test", "127.0.0.1")
	a := consultest.StartTLS(t, &consultest.TLS{CertPath: server.CertPath, KeyPath: server.KeyPath})
	a.Register(t, consultest.Service{ID: "tls-1", Name: "tlssvc", Address: "127.0.0.91", Port: 8081})

	namer := func(commonName string) *Namer {
		c, err := load(fmt.Sprintf(`namers:
- kind: io.l5d.consul
  host: 127.0.0.1
  port: %d
  failFast: true
  tls:
    commonName: %s
    trustCerts: [%q]
`, a.HTTPSPort(), commonName, ca.CertPath))
		if err != nil {
			t.Fatal(err)
		}
		nm, err := c.NewNamer(naming.Env{Ctx: t.Context()})
		if err != nil {
			t.Fatal(err)
		}
		n := nm.(*Namer)
		t.Cleanup(func() { n.Close() })
		return n
	}
	w := watchLookup(t, namer("consul.test"), "/.local/tlssvc")
	w.await(t, "/#/io.l5d.consul/.local/tlssvc / [127.0.0.91:8081]")
	w.stop()

	bad := watchLookup(t, namer("someone-else.test"), "/.local/tlssvc")
	deadline := time.Now().Add(wait)
	for !strings.HasPrefix(bad.state(), "fail: ") {
		if time.Now().After(deadline) {
			t.Fatalf("wrong commonName: state %q, want a TLS failure", bad.state())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := bad.state(); !strings.Contains(got, "someone-else.test") && !strings.Contains(got, "certificate") {
		t.Fatalf("wrong commonName: %q does not say why", got)
	}
	bad.stop()
}
