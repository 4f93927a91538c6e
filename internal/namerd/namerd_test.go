package namerd

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	_ "github.com/linnet-mesh/linnet/internal/namer/fs"
	_ "github.com/linnet-mesh/linnet/internal/namer/rewrite"
	_ "github.com/linnet-mesh/linnet/internal/storage/memory"
)

// startProcess runs a namerd from config text (listeners on port 0).
func startProcess(t *testing.T, text string) *Process {
	t.Helper()
	var cfg Config
	if err := config.Load([]byte(text), &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	p, err := Start(context.Background(), &cfg, Options{Text: []byte(text)})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func fsConfig(t *testing.T) string {
	text, _ := fsConfigDir(t)
	return text
}

// fsConfigDir is fsConfig, also returning the io.l5d.fs directory.
func fsConfigDir(t *testing.T) (string, string) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello"), []byte("127.0.0.1 8080\n127.0.0.1 8081\n"), 0o644)
	return `admin:
  port: 0
storage:
  kind: io.l5d.inMemory
  namespaces:
    default: |
      /svc => /#/io.l5d.fs;
    internal: /host => /svc
namers:
- kind: io.l5d.fs
  rootDir: ` + dir + `
interfaces:
- kind: io.l5d.httpController
  port: 0
`, dir
}

// bound-names streams the names the fs namer knows as files come and go.
func TestBoundNamesStream(t *testing.T) {
	text, dir := fsConfigDir(t)
	p := startProcess(t, text)
	s := openStream(t, "http://"+p.InterfaceAddrs()[0]+"/api/1/bound-names?watch=true")
	if got := s.next("initial"); got != `["/#/io.l5d.fs/hello"]` {
		t.Fatalf("initial: %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "world"), []byte("127.0.0.1 9000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := s.next("after adding world"); got != `["/#/io.l5d.fs/hello","/#/io.l5d.fs/world"]` {
		t.Fatalf("after adding world: %q", got)
	}
}

func TestProcess(t *testing.T) {
	p := startProcess(t, fsConfig(t))
	api := "http://" + p.InterfaceAddrs()[0]
	adm := "http://" + p.AdminAddr()

	code, body := get(t, api+"/api/1/bind/default?path=/svc/hello")
	if code != 200 || !strings.Contains(body, `"id":"/#/io.l5d.fs/hello"`) || !strings.Contains(body, `"port":8081`) {
		t.Fatalf("bind through the fs namer: %d %s", code, body)
	}
	if code, body := get(t, api+"/api/1/bound-names"); code != 200 || body != `["/#/io.l5d.fs/hello"]`+"\n" {
		t.Fatalf("bound-names: %d %q", code, body)
	}
	if code, body := get(t, adm+"/admin/ping"); code != 200 || body != "pong" {
		t.Fatalf("ping: %d %q", code, body)
	}
	if code, body := get(t, adm+"/admin/metrics.json"); code != 200 || !strings.Contains(body, `"interface/io.l5d.httpController/requests":`) {
		t.Fatalf("metrics: %d %s", code, body)
	}
	code, body = get(t, adm+"/")
	for _, want := range []string{`data-namespace="default"`, `data-namespace="internal"`, "/svc =&gt; /#/io.l5d.fs;", "AAAAAAAAAAE="} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("page: %d, missing %q in\n%s", code, want, body)
		}
	}
	if code, _ := get(t, adm+"/dtab/nope"); code != 404 {
		t.Fatalf("/dtab/nope: %d", code)
	}
	if code, body := get(t, adm+"/dtab/internal"); code != 200 || strings.Contains(body, `data-namespace="default"`) || !strings.Contains(body, "/host =&gt; /svc;") {
		t.Fatalf("/dtab/internal: %d %s", code, body)
	}
	if code, body := get(t, adm+"/files/namerd/namerd.js"); code != 200 || !strings.Contains(body, "delegator.json") {
		t.Fatalf("asset: %d", code)
	}
	code, body = get(t, adm+"/dtab/delegator.json?path=/svc/hello&dtab=/svc=>/%23/io.l5d.fs&namespace=default")
	if code != 200 || !strings.HasPrefix(body, `{"type":"delegate","path":"/svc/hello"`) {
		t.Fatalf("delegator: %d %s", code, body)
	}

	// Stop ends open streams promptly instead of waiting for them.
	resp, err := http.Get(api + "/api/1/dtabs/default?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if code, body := get(t, adm+"/admin/metrics.json"); code != 200 || !strings.Contains(body, `"interface/io.l5d.httpController/open_streams":1`) {
		t.Fatalf("open stream gauge: %d %s", code, body)
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Stop took %v with a stream open", d)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"interfaces:\n- kind: io.l5d.httpController\n", "storage"},
		{"storage: {kind: io.l5d.inMemory}\n", "interfaces"},
		{"storage: {kind: io.l5d.inMemory}\ninterfaces: []\n", "at least one interface"},
		{"storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.destination\n", config.UnsupportedSuffix},
		{"storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.thriftNameInterpreter\n  retryBaseSecs: -1\n", "retryBaseSecs"},
		{"storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.thriftNameInterpreter\n  cache: {addrCacheInactive: -2}\n", "addrCacheInactive"},
		{"storage: {kind: io.l5d.nope}\ninterfaces:\n- kind: io.l5d.httpController\n", "unknown kind"},
		{"storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.httpController\n  port: 9991\n", "already used by admin"},
		{"storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.httpController\n  ip: localhost\n", "interfaces[0].ip"},
	} {
		var cfg Config
		err := config.Load([]byte(tc.text), &cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q): %v, want an error mentioning %q", tc.text, err, tc.want)
		}
	}
	var cfg Config
	if err := config.Load([]byte("storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.httpController\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Addr() != "127.0.0.1:9991" || cfg.Interfaces[0].Value.Common().Addr() != "127.0.0.1:4180" {
		t.Fatalf("defaults: admin %s, interface %s", cfg.Admin.Addr(), cfg.Interfaces[0].Value.Common().Addr())
	}
	if err := config.Load([]byte("storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.thriftNameInterpreter\n  cache: {bindingCacheActive: 5}\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	th, ok := cfg.Interfaces[0].Value.(*ThriftInterfaceConfig)
	if !ok || th.Addr() != "127.0.0.1:4100" || th.RetryBaseSecs != 600 || th.RetryJitterSecs != 60 ||
		th.Cache.BindingCacheActive != 5 || th.Cache.AddrCacheInactiveTTLSecs != 600 {
		t.Fatalf("thrift interface defaults: %#v", cfg.Interfaces[0].Value)
	}
}

// namerd resolves with its own namers: fs, rewrite and the /$/ system
// namers, chained through the namespace dtab.
func TestNamersChain(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "web"), []byte("127.0.0.1 7001\n"), 0o644)
	p := startProcess(t, `admin: {port: 0}
storage:
  kind: io.l5d.inMemory
  namespaces:
    default: |
      /svc => /#/portNsSvc/http/default;
      /k8s/default/http => /#/io.l5d.fs;
      /svc/legacy => /$/inet/127.0.0.1/7002;
namers:
- kind: io.l5d.rewrite
  prefix: /portNsSvc
  pattern: "/{port}/{ns}/{svc}"
  name: "/k8s/{ns}/{port}/{svc}"
- kind: io.l5d.fs
  rootDir: `+dir+`
interfaces:
- kind: io.l5d.httpController
  port: 0
`)
	api := "http://" + p.InterfaceAddrs()[0]
	if code, body := get(t, api+"/api/1/resolve/default?path=/svc/web"); code != 200 || body != `{"type":"bound","addrs":[{"ip":"127.0.0.1","port":7001,"meta":{}}],"meta":{}}`+"\n" {
		t.Fatalf("rewrite then fs: %d %s", code, body)
	}
	if code, body := get(t, api+"/api/1/resolve/default?path=/svc/legacy"); code != 200 || body != `{"type":"bound","addrs":[{"ip":"127.0.0.1","port":7002,"meta":{}}],"meta":{}}`+"\n" {
		t.Fatalf("/$/inet: %d %s", code, body)
	}
}
