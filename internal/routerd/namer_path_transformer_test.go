package routerd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/linnet-mesh/linnet/internal/interpreter/fs" // interpreter io.l5d.fs
	_ "github.com/linnet-mesh/linnet/internal/namer/fs"       // io.l5d.fs
)

// io.l5d.replace and io.l5d.const with a /#/<namer>/... path, in routers
// built from config text with an io.l5d.fs namer on a temp dir and real
// loopback backends: every request goes to the endpoints of the path's
// file, and moving them (or removing the file) moves (or stops) the
// traffic; /delegator.json shows the replacement.
func TestNamerPathTransformersRouteRealRequests(t *testing.T) {
	one := startLoopbackBackend(t, "one", "127.0.0.1")
	two := startLoopbackBackend(t, "two", "127.0.0.2")
	_, p1 := one.hostPort()
	_, p2 := two.hostPort()
	dir := t.TempDir()
	writeFile := func(name, text string) {
		t.Helper()
		tmp := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("web", fmt.Sprintf("127.0.0.1 %s\n127.0.0.2 %s\n", p1, p2))
	writeFile("daemon", "127.0.0.1 "+p1+"\n")
	dtabFile := filepath.Join(t.TempDir(), "dtab")
	if err := os.WriteFile(dtabFile, []byte("/svc => /#/disco;\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	p, err := startFrom(t, `
admin: {port: 0}
namers:
- kind: io.l5d.fs
  prefix: /disco
  rootDir: `+dir+`
routers:
- protocol: http
  label: replace
  dtab: /svc => /#/disco;
  interpreter:
    kind: default
    transformers:
    - {kind: io.l5d.replace, path: /#/disco/daemon}
  servers: [{port: 0}]
- protocol: http
  label: const
  dtab: /svc => /#/disco;
  interpreter:
    kind: default
    transformers:
    - {kind: io.l5d.const, path: /#/disco/daemon}
  servers: [{port: 0}]
- protocol: http
  label: fsinterp
  interpreter:
    kind: io.l5d.fs
    dtabFile: `+dtabFile+`
    transformers:
    - {kind: io.l5d.replace, path: /#/disco/daemon}
  servers: [{port: 0}]
`)
	if err != nil {
		t.Fatal(err)
	}
	addrs := p.ServerAddrs()
	if len(addrs) != 3 {
		t.Fatalf("%d servers; want 3", len(addrs))
	}
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	get := func(addr, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s via %s: %v", host, addr, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// expect sends n requests and checks that all reach backend want.
	expect := func(what, addr, host string, n int, want *loopbackBackend, id string) {
		t.Helper()
		b1, b2 := one.hits.Load(), two.hits.Load()
		for range n {
			code, body := get(addr, host)
			if code != http.StatusOK || body != want.name+" "+id {
				t.Fatalf("%s, host %s: %d %q; want 200 %q", what, host, code, body, want.name+" "+id)
			}
		}
		h1, h2 := one.hits.Load()-b1, two.hits.Load()-b2
		if (want == one && (h1 != int64(n) || h2 != 0)) || (want == two && (h2 != int64(n) || h1 != 0)) {
			t.Errorf("%s, host %s: backends got %d/%d; want all %d on %s", what, host, h1, h2, n, want.name)
		}
	}
	// eventually waits until a request for host reaches want.
	eventually := func(what, addr, host, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := get(addr, host)
			if strings.HasPrefix(body, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %d %q after 10s; want %q", what, code, body, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	replID := "/%/io.l5d.replace/#/disco/daemon"
	constID := "/%/io.l5d.const/#/disco/daemon"
	// web lists both backends, but every request goes to daemon's.
	expect("replace", addrs[0], "web", 10, one, replID)
	expect("const", addrs[1], "web", 5, one, constID)
	expect("replace under the io.l5d.fs interpreter", addrs[2], "web", 5, one, replID)
	// A name that does not exist stays negative under replace; const
	// sends it to daemon anyway.
	b1, b2 := one.hits.Load(), two.hits.Load()
	if code, body := get(addrs[0], "nosuch"); code < 400 || one.hits.Load() != b1 || two.hits.Load() != b2 {
		t.Errorf("replace of a negative name: %d %q and a backend was called; want an error and no backend", code, body)
	}
	expect("const", addrs[1], "nosuch", 5, one, constID)

	// /delegator.json explains the replacement, with its address set.
	v := url.Values{"namespace": {"replace"}, "dtab": {"/svc => /#/disco"}, "path": {"/svc/web"}}
	resp, err := client.Get("http://" + p.AdminAddr() + "/delegator.json?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"type":"transformation"`, `"name":"io.l5d.replace"`, replID, "127.0.0.1", "/#/disco/web"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("delegator: %d %s; want it to mention %s", resp.StatusCode, body, want)
		}
	}

	// Moving daemon's endpoint to 127.0.0.2 moves all the traffic.
	writeFile("daemon", "127.0.0.2 "+p2+"\n")
	for i, addr := range addrs {
		eventually(fmt.Sprintf("router %d after daemon moved", i), addr, "web", "two ")
	}
	expect("replace after the move", addrs[0], "web", 10, two, replID)
	expect("const after the move", addrs[1], "nosuch", 5, two, constID)
	expect("io.l5d.fs interpreter after the move", addrs[2], "web", 5, two, replID)

	// Without the file the replacement does not exist: requests fail and
	// reach no backend; with it back, traffic resumes.
	if err := os.Remove(filepath.Join(dir, "daemon")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(addrs[0], "web")
		if code >= 400 {
			if !strings.Contains(body, replID) {
				t.Errorf("with daemon gone: %d %q; want an error naming %s", code, body, replID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon removed 10s ago, still %d %q", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b1, b2 = one.hits.Load(), two.hits.Load()
	if code, body := get(addrs[1], "web"); code < 400 || one.hits.Load() != b1 || two.hits.Load() != b2 {
		t.Errorf("const with daemon gone: %d %q; want an error and no backend", code, body)
	}
	writeFile("daemon", "127.0.0.1 "+p1+"\n")
	eventually("replace after daemon came back", addrs[0], "web", "one ")
	expect("replace after daemon came back", addrs[0], "web", 5, one, replID)
}

// A /#/ path whose prefix no namer is mounted at stops the start, naming
// the key and the value.
func TestNamerPathTransformerUnknownPrefix(t *testing.T) {
	for _, kind := range []string{"io.l5d.replace", "io.l5d.const"} {
		text := `
admin: {port: 0}
namers:
- {kind: io.l5d.fs, rootDir: ` + t.TempDir() + `}
routers:
- protocol: http
  label: web
  dtab: /svc => /#/io.l5d.fs;
  interpreter:
    kind: default
    transformers:
    - {kind: ` + kind + `, path: /#/io.l5d.k8s/default/http/linkerd}
  servers: [{port: 0}]
`
		cfg, err := LoadConfig([]byte(text))
		if err != nil {
			t.Fatalf("config: %v", err)
		}
		p, err := Start(context.Background(), cfg, Options{Text: []byte(text)})
		if err == nil {
			p.Stop()
			t.Fatalf("%s: started; want an error", kind)
		}
		want := `interpreter.transformers[0].path (` + kind + `): "/#/io.l5d.k8s/default/http/linkerd": no configured namer is mounted at /#/io.l5d.k8s`
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "routers[0] (web)") {
			t.Errorf("%s: error = %v\nwant it to contain routers[0] (web) and %s", kind, err, want)
		}
	}
}
