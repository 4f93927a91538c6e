package routerd

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A namer's own `transformers:` apply to what it binds: the io.l5d.fs
// entry lists a port where nothing listens, and the namer's io.l5d.port
// transformer sends the requests to the backend's port. Without the
// transformer every request would fail to connect.
func TestNamerTransformersApply(t *testing.T) {
	be := startLoopbackBackend(t, "be", "127.0.0.1")
	_, port := be.hostPort()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web"), []byte("127.0.0.1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := startFrom(t, `
admin: {port: 0}
namers:
- kind: io.l5d.fs
  rootDir: `+dir+`
  transformers:
  - {kind: io.l5d.port, port: `+port+`}
routers:
- protocol: http
  dtab: /svc => /#/io.l5d.fs;
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	for range 5 {
		req, _ := http.NewRequest("GET", "http://"+p.ServerAddrs()[0]+"/", nil)
		req.Host = "web"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("be /%%/io.l5d.port/%s/#/io.l5d.fs/web", port); resp.StatusCode != http.StatusOK || string(body) != want {
			t.Fatalf("got %d %q (l5d-err %q), want 200 %q", resp.StatusCode, body, resp.Header.Get("l5d-err"), want)
		}
	}
	if got := be.hits.Load(); got != 5 {
		t.Fatalf("backend served %d requests, want 5", got)
	}
}
