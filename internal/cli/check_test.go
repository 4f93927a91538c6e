package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/linnet-mesh/linnet/internal/plugins"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("namers:\n- kind: io.l5d.fs\n  rootDir: disco\nrouters:\n- protocol: http\n  dtab: /svc => /#/io.l5d.fs\n  servers:\n  - port: 4140\n"), 0o644)
	os.WriteFile(bad, []byte("routers:\n- protocol: http\n  servers:\n  - port: 4140\n    ipp: 0.0.0.0\n  dtab: /svc => \n"), 0o644)

	var out, errw bytes.Buffer
	if code := Main([]string{"check", good}, strings.NewReader(""), &out, &errw); code != 0 {
		t.Fatalf("good config: exit %d, out %q, err %q", code, out.String(), errw.String())
	}
	if want := good + ": OK (1 router, 1 namer, 0 telemeters)\n"; out.String() != want {
		t.Errorf("out = %q, want %q", out.String(), want)
	}

	out.Reset()
	errw.Reset()
	if code := Main([]string{"check", bad}, strings.NewReader(""), &out, &errw); code != 1 {
		t.Fatalf("bad config: exit %d, want 1", code)
	}
	want := bad + `:5: routers[0].servers[0].ipp: unknown key "ipp"; did you mean "ip"?` + "\n" +
		bad + ":6: routers[0].dtab: invalid dtab: "
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("out = %q, want prefix %q", out.String(), want)
	}
	if !strings.Contains(errw.String(), "2 problems") {
		t.Errorf("stderr = %q, want the problem count", errw.String())
	}

	// stdin
	out.Reset()
	if code := Main([]string{"check", "-"}, strings.NewReader(`{"routers": [{"protocol": "http", "servers": [{}]}]}`), &out, &errw); code != 0 {
		t.Fatalf("stdin: exit %d, out %q", code, out.String())
	}
	if !strings.HasPrefix(out.String(), "<stdin>: OK") {
		t.Errorf("out = %q", out.String())
	}

	// options the router accepts but ignores: check warns as the router does
	ignored := filepath.Join(dir, "ignored.yaml")
	os.WriteFile(ignored, []byte("routers:\n- protocol: http\n  label: web\n  compressionLevel: 5\n  streamingEnabled: false\n  servers:\n  - port: 4140\n"), 0o644)
	out.Reset()
	if code := Main([]string{"check", ignored}, strings.NewReader(""), &out, &errw); code != 0 {
		t.Fatalf("ignored options: exit %d, out %q", code, out.String())
	}
	for _, w := range []string{
		ignored + `: warning: routers[0] (router "web"): compressionLevel is ignored`,
		ignored + `: warning: routers[0] (router "web"): streamingEnabled: false is ignored`,
		ignored + ": OK (1 router",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("out = %q, want a line starting %q", out.String(), w)
		}
	}

	// a namerd config
	namerd := filepath.Join(dir, "namerd.yaml")
	os.WriteFile(namerd, []byte("storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.httpController\n"), 0o644)
	out.Reset()
	errw.Reset()
	if code := Main([]string{"check", namerd}, strings.NewReader(""), &out, &errw); code != 0 {
		t.Errorf("namerd config: exit %d, stdout %q, stderr %q", code, out.String(), errw.String())
	}
	if want := namerd + ": OK (namerd: storage io.l5d.inMemory, 1 interface, 0 namers)\n"; out.String() != want {
		t.Errorf("namerd config: out = %q, want %q", out.String(), want)
	}
	out.Reset()
	os.WriteFile(namerd, []byte("storage: {kind: io.l5d.inMemry}\ninterfaces:\n- kind: io.l5d.httpController\n"), 0o644)
	if code := Main([]string{"check", namerd}, strings.NewReader(""), &out, &errw); code != 1 ||
		!strings.HasPrefix(out.String(), namerd+`:1: storage.kind: unknown kind "io.l5d.inMemry"; did you mean "io.l5d.inMemory"?`) {
		t.Errorf("bad namerd config: exit %d, stdout %q", code, out.String())
	}

	// a namerd option accepted but ignored: check warns as namerd does
	os.WriteFile(namerd, []byte("storage: {kind: io.l5d.inMemory}\ninterfaces:\n- {kind: io.l5d.thriftNameInterpreter, cache: {addrCacheActive: 20}}\n"), 0o644)
	out.Reset()
	if code := Main([]string{"check", namerd}, strings.NewReader(""), &out, &errw); code != 0 ||
		!strings.Contains(out.String(), namerd+": warning: interfaces[0] (io.l5d.thriftNameInterpreter): cache.addrCacheActive is ignored") {
		t.Errorf("namerd warning: exit %d, stdout %q", code, out.String())
	}

	// no argument
	errw.Reset()
	if code := Main([]string{"check"}, strings.NewReader(""), &out, &errw); code != 1 ||
		!strings.Contains(errw.String(), "check takes one CONFIG path (or - for stdin), got 0 arguments") {
		t.Errorf("no argument: exit %d, stderr %q", code, errw.String())
	}

	// missing file
	if code := Main([]string{"check", filepath.Join(dir, "nope")}, strings.NewReader(""), &out, &errw); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}

// A Kubernetes manifest, as in the Linkerd 1.x examples: the configurations
// in its ConfigMaps are checked, with the manifest's line numbers.
func TestCheckKubernetesManifest(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const linkerd = `# runs linkerd in a daemonset
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: l5d-config
data:
  config.yaml: |-
    admin:
      port: 9990
    namers:
    - kind: io.l5d.fs
      rootDir: disco
    routers:
    - protocol: http
      label: outgoing
      dtab: /svc => /#/io.l5d.fs;
      servers:
      - ip: 127.0.0.1
        port: 4140
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: namerd-config
data:
  config.yml: |-
    storage:
      kind: io.l5d.inMemory
    interfaces:
    - kind: io.l5d.httpController
  unrelated: "some: value"
---
kind: DaemonSet
apiVersion: apps/v1
metadata:
  name: l5d
`
	good := write("good.yml", linkerd)
	r := linnet(t, "", "check", good)
	r.want(t, 0, good+": configmap/l5d-config config.yaml: OK (1 router, 1 namer, 0 telemeters)\n"+
		good+": configmap/namerd-config config.yml: OK (namerd: storage io.l5d.inMemory, 1 interface, 0 namers)\n")

	// Typos in both: each problem is on its line of the manifest.
	bad := write("bad.yml", strings.Replace(strings.Replace(linkerd, "rootDir:", "rootdir:", 1), "io.l5d.inMemory", "io.l5d.inMemry", 1))
	r = linnet(t, "", "check", bad)
	if r.code != 1 {
		t.Fatalf("bad manifest: exit %d, want 1 (stdout %q)", r.code, r.out)
	}
	for _, want := range []string{
		bad + `:13: configmap/l5d-config config.yaml: namers[0].rootdir: unknown key "rootdir"; did you mean "rootDir"?`,
		bad + `:29: configmap/namerd-config config.yml: storage.kind: unknown kind "io.l5d.inMemry"`,
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("stdout %q\nlacks %q", r.out, want)
		}
	}
	if !strings.Contains(r.err, "3 problems") { // rootdir, missing rootDir, the kind
		t.Errorf("stderr = %q, want the problem count", r.err)
	}

	// A value that is not a literal block has its problems on its key's line.
	folded := write("folded.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: l5d-config}\ndata:\n  config.json: '{\"routers\": [{\"protocol\": \"htp\", \"servers\": [{}]}]}'\n")
	r = linnet(t, "", "check", folded)
	if want := folded + `:5: configmap/l5d-config config.json: routers[0].protocol: unknown protocol "htp"`; r.code != 1 || !strings.HasPrefix(r.out, want) {
		t.Errorf("JSON value: exit %d, stdout %q, want prefix %q", r.code, r.out, want)
	}

	// A manifest without a Linkerd configuration says so.
	none := write("none.yml", "apiVersion: v1\nkind: Service\nmetadata: {name: l5d}\n---\napiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n")
	r = linnet(t, "", "check", none)
	if r.code != 1 || !strings.Contains(r.err, "is a Kubernetes manifest, and none of its ConfigMaps holds a linkerd.yaml or namerd.yaml") {
		t.Errorf("manifest without a config: exit %d, stderr %q", r.code, r.err)
	}

	// Several documents that are not Kubernetes objects are still refused.
	multi := write("multi.yaml", "routers: []\n---\nrouters: []\n")
	r = linnet(t, "", "check", multi)
	if r.code != 1 || !strings.Contains(r.out, "more than one YAML document") {
		t.Errorf("two linkerd documents: exit %d, stdout %q", r.code, r.out)
	}
}
