package http1

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// tlsBackend is an HTTPS server whose certificate (issued by ca) carries
// names; it counts the connections it accepted.
func tlsBackend(t *testing.T, ca *tlstest.CA, names ...string) (addr string, conns *atomic.Int64) {
	t.Helper()
	pair := ca.Issue("backend", names...)
	cert, err := tls.LoadX509KeyPair(pair.CertPath, pair.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.TLS == nil {
			http.Error(w, "not TLS", 500)
			return
		}
		io.WriteString(w, r.TLS.ServerName+" "+r.Method+" "+string(b))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), conns
}

func clientConfig(t *testing.T, ca *tlstest.CA, name string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(ca.CertPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, ServerName: name, NextProtos: []string{"http/1.1"}}
}

func TestTLSClientChoosesConfigPerRequest(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	addr, conns := tlsBackend(t, ca, "a.test", "b.test")
	cfgs := map[string]*tls.Config{
		"/#/a":     clientConfig(t, ca, "a.test"),
		"/#/b":     clientConfig(t, ca, "b.test"),
		"/#/wrong": clientConfig(t, ca, "c.test"),
	}
	cl := NewTLSClient(addr, TransportOptions{}, func(r *http.Request) (*tls.Config, error) {
		return cfgs[r.Header.Get("l5d-dst-client")], nil
	})
	defer cl.CloseIdleConnections()
	do := func(client, method, body string) (string, error) {
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, "http://"+addr+"/", rb)
		req.Header.Set("l5d-dst-client", client)
		resp, err := cl.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for i := 0; i < 3; i++ {
		if got, err := do("/#/a", "GET", ""); err != nil || got != "a.test GET " {
			t.Fatalf("GET as a: %q %v", got, err)
		}
	}
	if got, err := do("/#/a", "POST", "data"); err != nil || got != "a.test POST data" {
		t.Fatalf("POST as a (streaming path): %q %v", got, err)
	}
	if got, err := do("/#/b", "GET", ""); err != nil || got != "b.test GET " {
		t.Fatalf("GET as b: %q %v", got, err)
	}
	// a's GETs shared one connection; a's POST (the fallback transport)
	// and b each have their own.
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (a fast path, a fallback, b)", n)
	}

	_, err := do("/#/wrong", "GET", "")
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !strings.Contains(err.Error(), "not c.test") {
		t.Errorf("wrong name: %v, want a dial error saying the certificate is not for c.test", err)
	}
}

func TestTLSClientConfigError(t *testing.T) {
	cl := NewTLSClient("127.0.0.1:1", TransportOptions{}, func(*http.Request) (*tls.Config, error) {
		return nil, errors.New("no such file")
	})
	req, _ := http.NewRequest("GET", "http://127.0.0.1:1/", nil)
	req.Header.Set("l5d-dst-client", "/#/x")
	if _, err := cl.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "client TLS for /#/x: no such file") {
		t.Errorf("err = %v", err)
	}
}
