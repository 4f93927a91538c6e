package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// TestLinkerToLinkerTLS is the walkthrough's linker-to-linker topology
// with TLS between the routers (linkerd-examples' linkerd-tls.yml), with
// two real linnet processes: a client calls the outgoing router in
// plaintext, which calls the incoming router over TLS, which calls the
// service in plaintext. The outgoing router finds the incoming one
// through io.l5d.fs, and its client TLS is per bound name (io.l5d.static,
// commonName "{service}.linkerd.io"), so one endpoint is reached under
// several names: the ones its certificate carries work, the others are
// refused as connection failures. A second incoming server requires
// client certificates (mutual TLS).
func TestLinkerToLinkerTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "mesh")
	incomingCert := ca.Issue("incoming", "world.linkerd.io", "secure.linkerd.io", "insecure.linkerd.io")
	clientCert := ca.Issue("outgoing-client", "outgoing.linkerd.io")
	other := tlstest.NewCA(t, "other")

	_, svcPort := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hi %s via %s", r.Host, r.Header.Get("l5d-dst-service"))
	}))

	inAdmin, inTLS, inMTLS := freePort(t), freePort(t), freePort(t)
	startRouter(t, fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: http
  label: incoming
  dtab: /svc => /$/inet/127.0.0.1/%d;
  servers:
  - ip: 127.0.0.1
    port: %d
    tls:
      certPath: %s
      keyPath: %s
  - ip: 127.0.0.1
    port: %d
    tls:
      certPath: %s
      keyPath: %s
      caCertPath: %s
      requireClientAuth: true
`, inAdmin, svcPort, inTLS, incomingCert.CertPath, incomingCert.KeyPath,
		inMTLS, incomingCert.CertPath, incomingCert.KeyPath, ca.CertPath), inAdmin)

	disco := t.TempDir()
	for name, port := range map[string]int{"world": inTLS, "hello": inTLS, "secure": inMTLS, "insecure": inMTLS, "untrusted": inTLS} {
		if err := os.WriteFile(filepath.Join(disco, name), fmt.Appendf(nil, "127.0.0.1 %d\n", port), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outAdmin, out := freePort(t), freePort(t)
	outgoing := startRouter(t, fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
namers:
- kind: io.l5d.fs
  rootDir: %s
routers:
- protocol: http
  label: outgoing
  dtab: /svc => /#/io.l5d.fs;
  servers: [{ip: 127.0.0.1, port: %d}]
  client:
    kind: io.l5d.static
    configs:
    - prefix: /#/io.l5d.fs/{service}
      tls:
        commonName: "{service}.linkerd.io"
        trustCerts: [%s]
    - prefix: /#/io.l5d.fs/secure
      tls:
        commonName: secure.linkerd.io
        trustCerts: [%s]
        clientAuth:
          certPath: %s
          keyPath: %s
    - prefix: /#/io.l5d.fs/untrusted
      tls:
        commonName: world.linkerd.io
        trustCertsBundle: %s
`, outAdmin, disco, out, ca.CertPath, ca.CertPath, clientCert.CertPath, clientCert.KeyPath, other.CertPath), outAdmin)

	u := fmt.Sprintf("http://127.0.0.1:%d/", out)
	for i := 0; i < 3; i++ { // pooled TLS connections are reused
		code, _, body := send(t, "GET", u, "world", nil, nil)
		if code != 200 || body != "hi world via /svc/world" {
			t.Fatalf("world over TLS: %d %q", code, body)
		}
	}
	// A request body takes the transport's streaming path, over TLS too.
	code, _, body := send(t, "POST", u, "world", nil, strings.NewReader(strings.Repeat("x", 100000)))
	if code != 200 || body != "hi world via /svc/world" {
		t.Fatalf("POST world over TLS: %d %q", code, body)
	}
	code, _, body = send(t, "GET", u, "secure", nil, nil)
	if code != 200 || body != "hi secure via /svc/secure" {
		t.Fatalf("secure over mutual TLS: %d %q", code, body)
	}

	// Refusals are connection failures: 502 with l5d-err naming the
	// endpoint and the bound name, and the TLS reason.
	for _, c := range []struct{ host, reason string }{
		// The certificate does not carry hello.linkerd.io.
		{"hello", "certificate is valid for world.linkerd.io, secure.linkerd.io, insecure.linkerd.io, not hello.linkerd.io"},
		// Signed by a CA the client does not trust.
		{"untrusted", "certificate signed by unknown authority"},
		// No client certificate for a server that requires one.
		{"insecure", "certificate required"},
	} {
		code, hdr, body := send(t, "GET", u, c.host, nil, nil)
		msg := unescape(hdr.Get("l5d-err"))
		if code != http.StatusBadGateway || !strings.Contains(msg, c.reason) || !strings.Contains(msg, "/#/io.l5d.fs/"+c.host) {
			t.Errorf("%s: got %d, l5d-err %q, body %q; want 502 naming /#/io.l5d.fs/%s and %q", c.host, code, msg, body, c.host, c.reason)
		}
	}

	// The incoming router speaks only TLS.
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", inTLS)); err == nil {
		resp.Body.Close()
		t.Errorf("plaintext request to the TLS server answered %d", resp.StatusCode)
	}

	m := metrics(t, outgoing)
	if n := m["rt/outgoing/client/#/io.l5d.fs/world/requests"]; n != 4 {
		t.Errorf("rt/outgoing/client/#/io.l5d.fs/world/requests = %v, want 4", n)
	}
}
