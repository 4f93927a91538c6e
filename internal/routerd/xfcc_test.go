package routerd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// xfccPKI is a CA, a server certificate for the router and a client
// certificate carrying a DNS and a URI name, as PEM files.
type xfccPKI struct {
	caPath, serverCert, serverKey string
	clientPair                    tls.Certificate
	clientDER                     []byte
}

func newXFCCPKI(t *testing.T) *xfccPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, kind string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "xfcc-ca"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Minute), now.Add(time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	p := &xfccPKI{caPath: write("ca.pem", "CERTIFICATE", caDER)}
	sDER, sKey := issue(2, &x509.Certificate{
		Subject: pkix.Name{CommonName: "router"}, DNSNames: []string{"router.linkerd.io"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.serverCert = write("server.pem", "CERTIFICATE", sDER)
	skDER, _ := x509.MarshalPKCS8PrivateKey(sKey)
	p.serverKey = write("server-key.pem", "PRIVATE KEY", skDER)
	spiffe, _ := url.Parse("spiffe://mesh/ns/default/sa/caller")
	cDER, cKey := issue(3, &x509.Certificate{
		Subject:  pkix.Name{CommonName: "caller", Organization: []string{"Linnet Test"}},
		DNSNames: []string{"caller.linkerd.io"}, URIs: []*url.URL{spiffe},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.clientDER = cDER
	p.clientPair = tls.Certificate{Certificate: [][]byte{cDER}, PrivateKey: cKey}
	return p
}

// xfccSeen is what a backend tells about the request it received.
type xfccSeen struct {
	Backend string   `json:"backend"`
	XFCC    []string `json:"xfcc"`
}

func xfccBackend(t *testing.T, name string) (port string) {
	t.Helper()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = json.NewEncoder(w).Encode(xfccSeen{Backend: name, XFCC: r.Header.Values("X-Forwarded-Client-Cert")})
	}))
	t.Cleanup(be.Close)
	_, port, _ = net.SplitHostPort(be.Listener.Addr().String())
	return port
}

// TestPerPrefixXFCC runs http routers whose io.l5d.static client entries
// turn forwardClientCert on for some bound names and off for others, on
// mutual-TLS servers, and checks what two real backends receive, against
// what io.l5d.global forwardClientCert produces for the same certificate.
func TestPerPrefixXFCC(t *testing.T) {
	pki := newXFCCPKI(t)
	pa, pb := xfccBackend(t, "a"), xfccBackend(t, "b")
	boundA, boundB := "/$/inet/127.0.0.1/"+pa, "/$/inet/127.0.0.1/"+pb
	mtls := fmt.Sprintf("{port: 0, tls: {certPath: %s, keyPath: %s, caCertPath: %s, requireClientAuth: true}}",
		pki.serverCert, pki.serverKey, pki.caPath)
	router := func(label, client, servers string) string {
		return fmt.Sprintf(`
- protocol: http
  label: %s
  dtab: /svc/a => %s; /svc/b => %s;
  client:%s
  servers: %s`, label, boundA, boundB, client, servers)
	}
	p, err := startFrom(t, "admin: {port: 0}\nrouters:"+
		// Server 0 (mutual TLS) and 1 (plain): only a forwards.
		router("byname", `
    kind: io.l5d.static
    configs:
    - prefix: `+boundA+`
      forwardClientCert: true
    - prefix: `+boundB+`
      requestAttemptTimeoutMs: 5000`, "["+mtls+", {port: 0}]")+
		// Server 2: on for every name but b.
		router("defaulton", `
    kind: io.l5d.static
    configs:
    - prefix: /
      forwardClientCert: true
    - prefix: /$/inet/*/`+pb+`
      forwardClientCert: false`, "["+mtls+"]")+
		// Server 3: off for every name but b.
		router("defaultoff", `
    kind: io.l5d.static
    configs:
    - prefix: /$/inet
      forwardClientCert: false
    - prefix: `+boundB+`
      forwardClientCert: true`, "["+mtls+"]")+
		// Server 4: the global setting, for reference.
		router("global", " {forwardClientCert: true}", "["+mtls+"]")+
		// Server 5: no forwardClientCert at all (the express lane's control).
		router("control", " {}", "[{port: 0}]")+"\n")
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
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "router.linkerd.io", Certificates: []tls.Certificate{pki.clientPair}}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	send := func(server int, host, method string) xfccSeen {
		t.Helper()
		scheme := "https"
		if server == 1 || server == 5 {
			scheme = "http"
		}
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("a body takes the net/http path")
		}
		req, _ := http.NewRequest(method, scheme+"://"+addrs[server]+"/x", body)
		req.Host = host
		req.Header.Set("X-Forwarded-Client-Cert", "Hash=FORGED")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("server %d, %s %s: %v", server, method, host, err)
		}
		defer resp.Body.Close()
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
		{"static, on for a only, plain server", 1, "", forged},
		{"static, on by default, off for b", 2, want, forged},
		{"static, off by default, on for b", 3, forged, want},
		{"no forwardClientCert", 5, forged, forged},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				for _, h := range []struct{ host, want string }{{"a", tt.a}, {"b", tt.b}} {
					// Twice: the second request finds the name bound (and
					// the certificate's value cached).
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

	// The express lane does not serve a server whose header depends on
	// the bound name (it would skip the client tier's decision), while it
	// does serve the same plain requests on a server without it.
	if n := expressCount(p, "byname", addrs[1]); n != 0 {
		t.Errorf("the express lane served %v requests on a server with per-prefix forwardClientCert; want 0", n)
	}
	if n := expressCount(p, "control", addrs[5]); n == 0 {
		t.Error("the express lane served no request on the control server: the check above shows nothing")
	}
}

// expressCount is the number of requests the express lane served on the
// server at addr of router label.
func expressCount(p *Process, label, addr string) uint64 {
	_, port, _ := net.SplitHostPort(addr)
	name := "rt/" + label + "/server/127.0.0.1/" + port + "/express"
	var n uint64
	p.Registry().Each(func(m telemetry.Metric) {
		if m.Name == name && m.Kind == telemetry.KindCounter {
			n = uint64(m.Counter.Value())
		}
	})
	return n
}

// recordingTransport records the x-forwarded-client-cert of each request.
type recordingTransport struct{ got [][]string }

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.got = append(r.got, req.Header.Values("X-Forwarded-Client-Cert"))
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

func (r *recordingTransport) CloseIdleConnections() {}

// A retry sends the same request again, and may bind it to another client
// (a weighted union): each attempt gets its own bound name's header and
// the request itself is never changed.
func TestXFCCTransportPerAttempt(t *testing.T) {
	c, err := LoadConfig([]byte(`routers:
- protocol: http
  client:
    kind: io.l5d.static
    configs:
    - prefix: /$/inet/127.0.0.1/1
      forwardClientCert: true
  servers: [{port: 4140}]
`))
	if err != nil {
		t.Fatal(err)
	}
	pol := newPolicies(c.Routers[0].Value.(*HTTPRouter), telemetry.NewRegistry().Scope(), func(string, ...any) {})
	if pol.xfccRules == nil {
		t.Fatal("no per-name rules for a per-prefix forwardClientCert")
	}
	rec := &recordingTransport{}
	tr := &xfccTransport{next: rec, rules: pol.xfccRules}
	pki := newXFCCPKI(t)
	req := httptest.NewRequest("GET", "http://web/", nil)
	req.Header.Set("X-Forwarded-Client-Cert", "Hash=FORGED")
	edge, conn := serverEdge("r", nil, "", xfccByName), proxy.Conn{PeerCertDER: pki.clientDER}
	edge.Apply(req.Header, req, conn, time.Now())
	req = req.WithContext(edge.ClientCertContext(req.Context(), conn))
	want, _ := proxy.ClientCertValue(pki.clientDER)
	for _, bound := range []string{"/$/inet/127.0.0.1/1", "/$/inet/127.0.0.1/2", "/$/inet/127.0.0.1/1", "not a path"} {
		req.Header.Set("L5d-Dst-Client", bound)
		if _, err := tr.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
	}
	for i, w := range []string{want, "Hash=FORGED", want, "Hash=FORGED"} {
		if g := rec.got[i]; len(g) != 1 || g[0] != w {
			t.Errorf("attempt %d: x-forwarded-client-cert = %q; want %q", i, g, w)
		}
	}
	if v := req.Header.Values("X-Forwarded-Client-Cert"); len(v) != 1 || v[0] != "Hash=FORGED" {
		t.Errorf("the request's own header became %q", v)
	}
}
