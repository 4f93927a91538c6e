package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// seenHeaders is what the edge-header backend reports of each request.
type seenHeaders struct {
	Forwarded []string
	Timestamp []string
	XFCC      []string
}

// edgeBackend answers each request with the Forwarded, X-Request-Start
// and x-forwarded-client-cert values it received, as JSON.
func edgeBackend(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	json.NewEncoder(w).Encode(seenHeaders{
		Forwarded: r.Header.Values("Forwarded"),
		Timestamp: r.Header.Values("X-Request-Start"),
		XFCC:      r.Header.Values("X-Forwarded-Client-Cert"),
	})
}

func decodeSeen(t *testing.T, status int, body string) seenHeaders {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d, body %q", status, body)
	}
	var s seenHeaders
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("backend answer %q: %v", body, err)
	}
	return s
}

// certHash is the upper-case hex SHA-256 of the DER certificate in a PEM
// file, as Linkerd's x-forwarded-client-cert Hash field carries it.
func certHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	sum := sha256.Sum256(blk.Bytes)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// TestEdgeHeadersHTTP runs an http router with addForwardedHeader,
// timestampHeader and client.forwardClientCert, on a plain server and a
// mutual-TLS server, and checks what a real backend receives.
func TestEdgeHeadersHTTP(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "edge")
	serverCert := ca.Issue("router", "router.linkerd.io", "127.0.0.1")
	clientCert := ca.Issue("caller", "caller.linkerd.io", "caller-alt.linkerd.io")
	_, svcPort := backend(t, http.HandlerFunc(edgeBackend))

	admin, plain, mtls := freePort(t), freePort(t), freePort(t)
	startRouter(t, fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: http
  label: edge
  dtab: /svc => /$/inet/127.0.0.1/%d;
  client:
    forwardClientCert: true
  servers:
  - ip: 127.0.0.1
    port: %d
    timestampHeader: x-request-start
    addForwardedHeader:
      by: {kind: static, label: l5d}
      for: {kind: "ip:port"}
  - ip: 127.0.0.1
    port: %d
    addForwardedHeader:
      by: {kind: router}
    tls:
      certPath: %s
      keyPath: %s
      caCertPath: %s
      requireClientAuth: true
`, admin, svcPort, plain, mtls, serverCert.CertPath, serverCert.KeyPath, ca.CertPath), admin)

	t.Run("plain server: Forwarded, timestamp, forged XFCC removed", func(t *testing.T) {
		for _, body := range []io.Reader{nil, strings.NewReader("a body takes the net/http path")} {
			method := http.MethodGet
			if body != nil {
				method = http.MethodPost
			}
			before := time.Now().UnixMilli()
			st, _, b := send(t, method, fmt.Sprintf("http://127.0.0.1:%d/x", plain), "web",
				map[string]string{"X-Forwarded-Client-Cert": "Hash=FORGED;Subject=\"CN=admin\"", "Forwarded": "for=_client"}, body)
			after := time.Now().UnixMilli()
			s := decodeSeen(t, st, b)
			if len(s.Forwarded) != 2 || s.Forwarded[0] != "for=_client" {
				t.Fatalf("%s: Forwarded = %q; want the caller's element, then the router's", method, s.Forwarded)
			}
			if !regexp.MustCompile(`^by=_l5d;for="127\.0\.0\.1:\d+";host=web$`).MatchString(s.Forwarded[1]) {
				t.Errorf("%s: Forwarded element = %q; want by=_l5d;for=\"127.0.0.1:<port>\";host=web", method, s.Forwarded[1])
			}
			if len(s.Timestamp) != 1 {
				t.Fatalf("%s: X-Request-Start = %q; want one value", method, s.Timestamp)
			}
			if ms, err := strconv.ParseInt(s.Timestamp[0], 10, 64); err != nil || ms < before || ms > after {
				t.Errorf("%s: X-Request-Start = %q; want epoch milliseconds in [%d, %d]", method, s.Timestamp[0], before, after)
			}
			if len(s.XFCC) != 0 {
				t.Errorf("%s: x-forwarded-client-cert = %q from a plain client; want it removed", method, s.XFCC)
			}
		}
	})

	t.Run("mutual TLS server: XFCC from the client certificate", func(t *testing.T) {
		pair, err := tls.LoadX509KeyPair(clientCert.CertPath, clientCert.KeyPath)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		caPEM, _ := os.ReadFile(ca.CertPath)
		roots.AppendCertsFromPEM(caPEM)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "router.linkerd.io", Certificates: []tls.Certificate{pair}}}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		want := "Hash=" + certHash(t, clientCert.CertPath) + `;DNS=caller.linkerd.io;DNS=caller-alt.linkerd.io;Subject="CN=caller.linkerd.io"`
		for _, body := range []io.Reader{nil, strings.NewReader("a body takes the net/http path")} {
			method := http.MethodGet
			if body != nil {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, fmt.Sprintf("https://127.0.0.1:%d/x", mtls), body)
			req.Host = "web"
			req.Header.Set("X-Forwarded-Client-Cert", "Hash=FORGED")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			s := decodeSeen(t, resp.StatusCode, string(b))
			if len(s.XFCC) != 1 || s.XFCC[0] != want {
				t.Errorf("%s: x-forwarded-client-cert = %q; want [%s]", method, s.XFCC, want)
			}
			if len(s.Forwarded) != 1 || !regexp.MustCompile(`^by=_edge;for=_[A-Za-z0-9]{6};host=web$`).MatchString(s.Forwarded[0]) {
				t.Errorf("%s: Forwarded = %q; want by=_edge (router label), a random for label and host=web", method, s.Forwarded)
			}
			if len(s.Timestamp) != 0 {
				t.Errorf("%s: X-Request-Start = %q on a server without timestampHeader", method, s.Timestamp)
			}
		}
	})
}

// TestEdgeHeadersH2 checks addForwardedHeader on an h2 router (h2c with
// prior knowledge on both sides).
func TestEdgeHeadersH2(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: http.HandlerFunc(edgeBackend), Protocols: &protos}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	svcPort := ln.Addr().(*net.TCPAddr).Port

	admin, port := freePort(t), freePort(t)
	startRouter(t, fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: h2
  label: h2edge
  experimental: true
  dtab: /svc => /$/inet/127.0.0.1/%d;
  identifier: {kind: io.l5d.header.token, header: ":authority"}
  servers:
  - ip: 127.0.0.1
    port: %d
    addForwardedHeader:
      by: {kind: ip}
      for: {kind: connectionRandom}
`, admin, svcPort, port), admin)

	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var first string
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/x", port), nil)
		req.Host = "web"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("router answered over %s; want HTTP/2", resp.Proto)
		}
		s := decodeSeen(t, resp.StatusCode, string(b))
		if len(s.Forwarded) != 1 || !regexp.MustCompile(`^by=127\.0\.0\.1;for=_[A-Za-z0-9]{6};host=web;proto=http$`).MatchString(s.Forwarded[0]) {
			t.Fatalf("Forwarded = %q; want by=127.0.0.1;for=_<6>;host=web;proto=http", s.Forwarded)
		}
		if i == 0 {
			first = s.Forwarded[0]
		} else if s.Forwarded[0] != first {
			t.Errorf("connectionRandom changed on one connection: %q then %q", first, s.Forwarded[0])
		}
	}
}

// TestEdgeHeadersH2TLS checks x-forwarded-client-cert on an h2 router
// serving HTTP/2 over mutual TLS.
func TestEdgeHeadersH2TLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "edge-h2")
	serverCert := ca.Issue("router", "router.linkerd.io")
	clientCert := ca.Issue("caller", "caller.linkerd.io")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: http.HandlerFunc(edgeBackend), Protocols: &protos}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	admin, port := freePort(t), freePort(t)
	startRouter(t, fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: h2
  label: h2tls
  experimental: true
  dtab: /svc => /$/inet/127.0.0.1/%d;
  identifier: {kind: io.l5d.header.token, header: ":authority"}
  client: {forwardClientCert: true}
  servers:
  - ip: 127.0.0.1
    port: %d
    tls:
      certPath: %s
      keyPath: %s
      caCertPath: %s
      requireClientAuth: true
`, admin, ln.Addr().(*net.TCPAddr).Port, port, serverCert.CertPath, serverCert.KeyPath, ca.CertPath), admin)

	pair, err := tls.LoadX509KeyPair(clientCert.CertPath, clientCert.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(ca.CertPath)
	roots.AppendCertsFromPEM(caPEM)
	var h2 http.Protocols
	h2.SetHTTP2(true)
	tr := &http.Transport{Protocols: &h2, TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "router.linkerd.io", Certificates: []tls.Certificate{pair}}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/x", port), nil)
	req.Host = "web"
	req.Header.Set("X-Forwarded-Client-Cert", "Hash=FORGED")
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("router answered over %s; want HTTP/2", resp.Proto)
	}
	s := decodeSeen(t, resp.StatusCode, string(b))
	want := "Hash=" + certHash(t, clientCert.CertPath) + `;DNS=caller.linkerd.io;Subject="CN=caller.linkerd.io"`
	if len(s.XFCC) != 1 || s.XFCC[0] != want {
		t.Errorf("x-forwarded-client-cert = %q; want [%s]", s.XFCC, want)
	}
}
