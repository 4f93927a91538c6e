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

	// a namerd config
	namerd := filepath.Join(dir, "namerd.yaml")
	os.WriteFile(namerd, []byte("storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.httpController\n"), 0o644)
	errw.Reset()
	if code := Main([]string{"check", namerd}, strings.NewReader(""), &out, &errw); code != 1 || !strings.Contains(errw.String(), "looks like a namerd.yaml") {
		t.Errorf("namerd config: exit %d, stderr %q", code, errw.String())
	}

	// missing file
	if code := Main([]string{"check", filepath.Join(dir, "nope")}, strings.NewReader(""), &out, &errw); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}
