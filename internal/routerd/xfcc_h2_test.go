package routerd

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// xfccH2Backend is a real h2c backend that answers with the
// x-forwarded-client-cert values it received (and fails a request that
// did not come over HTTP/2).
func xfccH2Backend(t *testing.T, name string) (port string) {
	t.Helper()
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.ProtoMajor != 2 {
			http.Error(w, "not HTTP/2: "+r.Proto, http.StatusHTTPVersionNotSupported)
			return
		}
		_ = json.NewEncoder(w).Encode(xfccSeen{Backend: name, XFCC: r.Header.Values("X-Forwarded-Client-Cert")})
	}))
	be.Config.Protocols = new(http.Protocols)
	be.Config.Protocols.SetUnencryptedHTTP2(true)
	be.Start()
	t.Cleanup(be.Close)
	_, port, _ = net.SplitHostPort(be.Listener.Addr().String())
	return port
}

// TestPerPrefixXFCCH2 is TestPerPrefixXFCC for h2 routers: io.l5d.static
// client entries turn forwardClientCert on for some bound names and off
// for others, on HTTP/2-over-mutual-TLS servers (and an h2c one), and two
// real h2c backends tell what they received, against what io.l5d.global
// forwardClientCert produces for the same certificate. Nothing is warned.
func TestPerPrefixXFCCH2(t *testing.T) {
	pki := newXFCCPKI(t)
	pa, pb := xfccH2Backend(t, "a"), xfccH2Backend(t, "b")
	boundA, boundB := "/$/inet/127.0.0.1/"+pa, "/$/inet/127.0.0.1/"+pb
	mtls := fmt.Sprintf("{port: 0, tls: {certPath: %s, keyPath: %s, caCertPath: %s, requireClientAuth: true}}",
		pki.serverCert, pki.serverKey, pki.caPath)
	router := func(label, client, servers string) string {
		return fmt.Sprintf(`
- protocol: h2
  label: %s
  dtab: /svc/a => %s; /svc/b => %s;
  client:%s
  servers: %s`, label, boundA, boundB, client, servers)
	}
	text := "admin: {port: 0}\nrouters:" +
		// Server 0 (mutual TLS) and 1 (h2c): only a forwards.
		router("byname", `
    kind: io.l5d.static
    configs:
    - prefix: `+boundA+`
      forwardClientCert: true
    - prefix: `+boundB+`
      requestAttemptTimeoutMs: 5000`, "["+mtls+", {port: 0}]") +
		// Server 2: on for every name but b.
		router("defaulton", `
    kind: io.l5d.static
    configs:
    - prefix: /
      forwardClientCert: true
    - prefix: /$/inet/*/`+pb+`
      forwardClientCert: false`, "["+mtls+"]") +
		// Server 3: off for every name but b.
		router("defaultoff", `
    kind: io.l5d.static
    configs:
    - prefix: /$/inet
      forwardClientCert: false
    - prefix: `+boundB+`
      forwardClientCert: true`, "["+mtls+"]") +
		// Server 4: the global setting, for reference.
		router("global", " {forwardClientCert: true}", "["+mtls+"]") +
		// Server 5: no forwardClientCert at all.
		router("control", " {}", "["+mtls+"]") + "\n"
	c, err := LoadConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range Warnings(c) {
		if strings.Contains(w, "forwardClientCert") {
			t.Errorf("warning %q for a per-prefix forwardClientCert, which h2 routers apply", w)
		}
	}
	p, err := startFrom(t, text)
	if err != nil {
		t.Fatal(err)
	}
	addrs := p.ServerAddrs()
	if len(addrs) != 6 {
		t.Fatalf("servers %q; want 6", addrs)
	}

	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(pki.caPath)
	roots.AppendCertsFromPEM(caPEM)
	overTLS := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{
		RootCAs: roots, ServerName: "router.linkerd.io", Certificates: []tls.Certificate{pki.clientPair}}}
	defer overTLS.CloseIdleConnections()
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()
	send := func(server int, host, method string) xfccSeen {
		t.Helper()
		scheme, cl := "https", &http.Client{Transport: overTLS, Timeout: 10 * time.Second}
		if server == 1 {
			scheme, cl = "http", &http.Client{Transport: h2c, Timeout: 10 * time.Second}
		}
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("a body")
		}
		req, _ := http.NewRequest(method, scheme+"://"+addrs[server]+"/x", body)
		req.Host = host
		req.Header.Set("X-Forwarded-Client-Cert", "Hash=FORGED")
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("server %d, %s %s: %v", server, method, host, err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("server %d answered over %s; want HTTP/2", server, resp.Proto)
		}
		var s xfccSeen
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 || s.Backend != host {
			t.Fatalf("server %d, %s %s: status %d, %+v, %v; want 200 from backend %s", server, method, host, resp.StatusCode, s, err, host)
		}
		return s
	}

	sum := sha256.Sum256(pki.clientDER)
	want := "Hash=" + strings.ToUpper(hex.EncodeToString(sum[:])) +
		`;DNS=caller.linkerd.io;SAN=spiffe://mesh/ns/default/sa/caller;Subject="CN=caller,O=Linnet Test"`
	const forged = "Hash=FORGED"
	for _, tt := range []struct {
		name   string
		server int
		a, b   string // what each backend must receive; "" for no header
	}{
		{"global", 4, want, want},
		{"static, on for a only", 0, want, forged},
		{"static, on for a only, h2c server", 1, "", forged},
		{"static, on by default, off for b", 2, want, forged},
		{"static, off by default, on for b", 3, forged, want},
		{"no forwardClientCert", 5, forged, forged},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				for _, h := range []struct{ host, want string }{{"a", tt.a}, {"b", tt.b}} {
					// Twice: the second request finds the name bound and
					// the connections open.
					for range 2 {
						s := send(tt.server, h.host, method)
						if h.want == "" && len(s.XFCC) != 0 || h.want != "" && (len(s.XFCC) != 1 || s.XFCC[0] != h.want) {
							t.Errorf("%s to %s: x-forwarded-client-cert = %q; want %q", method, h.host, s.XFCC, h.want)
						}
					}
				}
			}
		})
	}
}
