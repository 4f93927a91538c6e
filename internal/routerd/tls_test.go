package routerd

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

func trusting(t *testing.T, ca *tlstest.CA) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(ca.CertPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "linkerd"}}}
}

// Server TLS on an http router and on the admin server; client TLS from
// a second router of the same process to the first.
func TestHTTPRouterAndAdminTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	pair := ca.Issue("linkerd", "linkerd")
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.Header.Get("l5d-dst-service"))
	}))
	defer be.Close()
	p, err := startFrom(t, fmt.Sprintf(`
admin:
  port: 0
  tls: {certPath: %[1]s, keyPath: %[2]s}
routers:
- protocol: http
  label: in
  dtab: /svc/web => /$/inet/%[3]s;
  servers: [{port: 0, tls: {certPath: %[1]s, keyPath: %[2]s}}]
`, pair.CertPath, pair.KeyPath, strings.Replace(be.Listener.Addr().String(), ":", "/", 1)))
	if err != nil {
		t.Fatal(err)
	}
	c := trusting(t, ca)
	resp, err := c.Get("https://" + p.AdminAddr() + "/admin/ping")
	if err != nil {
		t.Fatalf("admin over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("admin ping over TLS: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", "https://"+p.ServerAddrs()[0]+"/", nil)
	req.Host = "web"
	resp, err = c.Do(req)
	if err != nil {
		t.Fatalf("router over TLS: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok /svc/web" {
		t.Errorf("router over TLS: %d %q", resp.StatusCode, b)
	}

	in := strings.Replace(p.ServerAddrs()[0], ":", "/", 1)
	q, err := startFrom(t, fmt.Sprintf(`
admin: {port: 0}
routers:
- protocol: http
  label: out
  dtab: /svc/web => /$/inet/%s;
  servers: [{port: 0}]
  client:
    tls: {commonName: linkerd, trustCerts: [%s]}
`, in, ca.CertPath))
	if err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest("GET", "http://"+q.ServerAddrs()[0]+"/", nil)
	req.Host = "web"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok /svc/web" {
		t.Errorf("router → TLS → router: %d %q", resp.StatusCode, b)
	}
}

func TestServerTLSFileErrors(t *testing.T) {
	_, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: h2
  servers: [{port: 0, tls: {certPath: /nonexistent/cert.pem, keyPath: /nonexistent/key.pem}}]
`)
	if err == nil || !strings.Contains(err.Error(), "servers[0].tls") || !strings.Contains(err.Error(), "/nonexistent/cert.pem") {
		t.Errorf("err = %v; want servers[0].tls naming /nonexistent/cert.pem", err)
	}
}

func TestStaticClientTLSFileErrors(t *testing.T) {
	_, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: h2
  servers: [{port: 0}]
  client:
    kind: io.l5d.static
    configs:
    - prefix: /#/io.l5d.fs/{service}
      tls: {commonName: "{service}.mesh", trustCerts: [/nonexistent/a.pem]}
    - prefix: /#/io.l5d.fs/web
      tls: {commonName: web.mesh, trustCertsBundle: /nonexistent/bundle.pem}
`)
	// The first entry depends on the bound name: it is checked per client.
	if err == nil || !strings.Contains(err.Error(), "client.configs[1].tls (prefix /#/io.l5d.fs/web)") || !strings.Contains(err.Error(), "/nonexistent/bundle.pem") {
		t.Errorf("err = %v; want client.configs[1].tls naming /nonexistent/bundle.pem", err)
	}
}
