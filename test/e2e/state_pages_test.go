package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// getJSON GETs url and decodes its JSON body into dst.
func getJSON(t *testing.T, url string, dst any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s; want 200 application/json", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// The optional state pages (spec headers-admin.md §5.1) show what the fs
// namer publishes and what the router's bound tier and balancers hold.
func TestStatePages(t *testing.T) {
	t.Parallel()
	_, hello := backend(t, text("hello"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), fmt.Appendf(nil, "127.0.0.1 %d\n", hello), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "idle"), []byte("127.0.0.1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	admin, port := freePort(t), freePort(t)
	cfg := fmt.Sprintf("namers:\n- kind: io.l5d.fs\n  rootDir: %s\n", dir) +
		oneRouter(admin, port, "/svc => /#/io.l5d.fs;", "", "")
	l := startRouter(t, cfg, admin)

	var names []string
	getJSON(t, l.admin+"/bound-names.json", &names)
	if fmt.Sprint(names) != "[/#/io.l5d.fs/hello /#/io.l5d.fs/idle]" {
		t.Errorf("bound-names before traffic = %v; want the fs namer's two names", names)
	}
	var clients map[string]json.RawMessage
	getJSON(t, l.admin+"/client_state.json", &clients)
	if len(clients) != 0 {
		t.Errorf("client_state before traffic = %v; want {}", clients)
	}

	for range 3 {
		if code, _, body := send(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), "hello", nil, nil); code != 200 || body != "hello" {
			t.Fatalf("GET via router: %d %q; want 200 hello", code, body)
		}
	}
	var state map[string]struct {
		Router    string   `json:"router"`
		State     string   `json:"state"`
		Addresses []string `json:"addresses"`
		Endpoints []struct {
			Address   string `json:"address"`
			Available bool   `json:"available"`
			Ejected   bool   `json:"ejected"`
			Load      *int64 `json:"load"`
		} `json:"endpoints"`
	}
	getJSON(t, l.admin+"/client_state.json", &state)
	want := fmt.Sprintf("127.0.0.1:%d", hello)
	c, ok := state["/#/io.l5d.fs/hello"]
	if !ok || len(state) != 1 || c.Router != "web" || c.State != "bound" || fmt.Sprint(c.Addresses) != "["+want+"]" {
		t.Fatalf("client_state = %+v; want only /#/io.l5d.fs/hello, router web, bound [%s]", state, want)
	}
	if len(c.Endpoints) != 1 || c.Endpoints[0].Address != want || !c.Endpoints[0].Available || c.Endpoints[0].Ejected ||
		c.Endpoints[0].Load == nil || *c.Endpoints[0].Load != 0 {
		t.Errorf("endpoints = %+v; want %s available, not ejected, load 0", c.Endpoints, want)
	}

	var ns struct {
		RootDir string `json:"rootDir"`
		Names   map[string]struct {
			State     string   `json:"state"`
			Addresses []string `json:"addresses"`
		} `json:"names"`
		Lookups []string `json:"lookups"`
	}
	getJSON(t, l.admin+"/namer_state/io.l5d.fs.json", &ns)
	if ns.RootDir != dir || ns.Names["hello"].State != "bound" || fmt.Sprint(ns.Names["hello"].Addresses) != "["+want+"]" ||
		fmt.Sprint(ns.Names["idle"].Addresses) != "[127.0.0.1:1]" || fmt.Sprint(ns.Lookups) != "[/hello]" {
		t.Errorf("namer_state = %+v; want rootDir %s, hello bound to %s, idle to 127.0.0.1:1, lookup /hello", ns, dir, want)
	}
	resp, err := http.Post(l.admin+"/client_state.json", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /client_state.json: %d; want 405", resp.StatusCode)
	}
}
