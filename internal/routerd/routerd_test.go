package routerd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func startFrom(t *testing.T, text string) (*Process, error) {
	t.Helper()
	cfg, err := LoadConfig([]byte(text))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	p, err := Start(context.Background(), cfg, Options{Text: []byte(text)})
	if err == nil {
		t.Cleanup(func() { p.Stop() })
	}
	return p, err
}

func TestStartServeStop(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Header.Get("l5d-dst-service"), r.Header.Get("l5d-dst-client"))
	}))
	defer be.Close()
	port := be.Listener.Addr().String()[len("127.0.0.1:"):]
	p, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: http
  label: a
  dtab: /svc/web => /$/inet/127.0.0.1/`+port+`;
  servers: [{port: 0}, {port: 0, clearContext: true}]
`)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.ServerAddrs()); n != 2 {
		t.Fatalf("%d servers; want 2", n)
	}
	req, _ := http.NewRequest("GET", "http://"+p.ServerAddrs()[0]+"/", nil)
	req.Host = "web"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "/svc/web /$/inet/127.0.0.1/" + port; string(b) != want {
		t.Errorf("got %q; want %q", b, want)
	}
	resp, err = http.Get("http://" + p.AdminAddr() + "/admin/ping")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin ping: %v %v", resp, err)
	}
	resp.Body.Close()
	p.Stop()
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	if _, err := http.Get("http://" + p.ServerAddrs()[0] + "/"); err == nil {
		t.Error("server still accepting after Stop")
	}
}

// A client tls block whose files cannot be read fails Start, naming the
// block and the file, rather than failing every request later.
func TestStartRefusesUnreadableClientTLS(t *testing.T) {
	_, err := startFrom(t, `
admin: {port: 0}
routers:
- protocol: http
  servers: [{port: 0}]
  client:
    tls: {commonName: foo, trustCerts: [/nonexistent/ca.pem]}
`)
	if err == nil || !strings.Contains(err.Error(), "client.tls") || !strings.Contains(err.Error(), "/nonexistent/ca.pem") {
		t.Errorf("err = %v; want client.tls refused naming /nonexistent/ca.pem", err)
	}
}

func TestAdminSecurityFromConfig(t *testing.T) {
	p, err := startFrom(t, `
admin:
  port: 0
  security:
    controlEnabled: false
routers:
- protocol: http
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+p.AdminAddr()+"/admin/shutdown", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("POST /admin/shutdown with controlEnabled: false = %d; want 404", resp.StatusCode)
	}
}
