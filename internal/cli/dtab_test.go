package cli

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/storage/memory"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

func startTestNamerd(t *testing.T) string {
	srv := httptest.NewServer(namerd.NewController(memory.New(nil), nil, telemetry.Scope{}, nil))
	t.Cleanup(srv.Close)
	return srv.URL
}

type run struct {
	code     int
	out, err string
}

func linnet(t *testing.T, stdin string, args ...string) run {
	t.Helper()
	var out, errw bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errw)
	return run{code, out.String(), errw.String()}
}

func (r run) want(t *testing.T, code int, out string) {
	t.Helper()
	if r.code != code || r.out != out {
		t.Fatalf("got exit %d, stdout %q (stderr %q); want exit %d, stdout %q", r.code, r.out, r.err, code, out)
	}
}

// TestDtabCommandsLikeNamerctl runs the walkthrough's namerctl session.
func TestDtabCommandsLikeNamerctl(t *testing.T) {
	base := startTestNamerd(t)
	t.Setenv("NAMERCTL_BASE_URL", base)
	dir := t.TempDir()

	linnet(t, "", "dtab", "list").want(t, 0, "")
	linnet(t, "", "dtab", "list", "--json").want(t, 0, "[]\n")
	// The walkthrough: echo "..." | namerctl dtab create external -
	linnet(t, "\n   /svc/* => /host ;\n   /host => /#/io.l5d.k8s/default/http/hello\n", "dtab", "create", "external", "-").
		want(t, 0, "Created external\n")
	linnet(t, "/a=>/b", "dtab", "create", "external", "-").want(t, 255, "unexpected response: 409 Conflict\n")
	linnet(t, "", "dtab", "ls").want(t, 0, "external\n")
	linnet(t, "", "dtab", "get", "external").want(t, 0,
		"# version AAAAAAAAAAE=\n/svc/*  => /host ;\n/host   => /#/io.l5d.k8s/default/http/hello ;\n")
	linnet(t, "", "dtab", "cat", "external", "--pretty=false").want(t, 0, "/svc/*=>/host;/host=>/#/io.l5d.k8s/default/http/hello;\n")
	got := linnet(t, "", "dtab", "get", "external", "--json")
	got.want(t, 0, `{"version":"AAAAAAAAAAE=","dtab":[{"prefix":"/svc/*","dst":"/host"},{"prefix":"/host","dst":"/#/io.l5d.k8s/default/http/hello"}]}`+"\n")

	// get --json > f; edit; update f: an optimistic-concurrency update.
	f := filepath.Join(dir, "external.json")
	edited := strings.Replace(got.out, "hello", "world", 1)
	os.WriteFile(f, []byte(edited), 0o644)
	linnet(t, "", "dtab", "update", "external", f).want(t, 0, "Updated external\n")
	linnet(t, "", "dtab", "update", "external", f).want(t, 255, "unexpected response: 412 Precondition Failed\n")
	linnet(t, "", "dtab", "get", "external", "--pretty=false").want(t, 0, "/svc/*=>/host;/host=>/#/io.l5d.k8s/default/http/world;\n")

	// --version with text input.
	txt := filepath.Join(dir, "d.dtab")
	os.WriteFile(txt, []byte("/svc=>/#/io.l5d.fs;\n"), 0o644)
	linnet(t, "", "dtab", "up", "external", txt, "--version", "AAAAAAAAAAE=").want(t, 255, "unexpected response: 412 Precondition Failed\n")
	linnet(t, "", "dtab", "up", "external", txt, "--version", "AAAAAAAAAAI=").want(t, 0, "Updated external\n")
	linnet(t, "", "dtab", "update", "fresh", txt).want(t, 0, "Updated fresh\n")

	// A bare JSON array is refused by namerctl itself.
	os.WriteFile(f, []byte(`[{"prefix":"/a","dst":"/b"}]`), 0o644)
	r := linnet(t, "", "dtab", "create", "arr", f)
	if r.code != 255 || !strings.Contains(r.out, "cannot unmarshal array") {
		t.Fatalf("array input: %+v", r)
	}

	linnet(t, "", "dtab", "delete", "fresh").want(t, 0, "Deleted fresh\n")
	linnet(t, "", "dtab", "rm", "fresh").want(t, 255, "resource was not found by ID or name\n")
	// createNs.sh relies on the exit code of get for a missing namespace.
	linnet(t, "", "dtab", "get", "fresh").want(t, 255, "resource was not found by ID or name\n")

	// Argument errors, in namerctl's words.
	linnet(t, "", "dtab", "get").want(t, 255, "get requires a name argument\n")
	linnet(t, "", "dtab", "create", "x").want(t, 255, "create requires a name and file path\n")
	linnet(t, "", "dtab", "update", "x").want(t, 255, "update requires a name and file path\n")
	linnet(t, "", "dtab", "delete").want(t, 255, "delete requires one argument\n")
	linnet(t, "", "dtab", "list", "x").want(t, 255, "list does not take arguments\n")
	linnet(t, "", "dtab", "get", "x", "--prety").want(t, 255, "unknown flag: --prety\n")
}

func TestDtabBaseURLResolution(t *testing.T) {
	base := startTestNamerd(t)
	t.Setenv("NAMERCTL_BASE_URL", "")
	dir := t.TempDir()
	sub := filepath.Join(dir, "a", "b")
	os.MkdirAll(sub, 0o755)
	t.Chdir(sub)
	linnet(t, "", "dtab", "list").want(t, 255, "empty base URL\n")
	linnet(t, "", "dtab", "list", "--base-url", "127.0.0.1:4180").want(t, 255, "invalid base URL: \"127.0.0.1:4180\"\n")
	linnet(t, "", "dtab", "list", "--base-url", base).want(t, 0, "")
	// A .namerctl.yaml in a parent directory.
	os.WriteFile(filepath.Join(dir, ".namerctl.yaml"), []byte("base-url: "+base+"\n"), 0o644)
	linnet(t, "/a=>/b", "dtab", "create", "x", "-").want(t, 0, "Created x\n")
	// The environment beats the file, the flag beats both.
	t.Setenv("NAMERCTL_BASE_URL", "http://127.0.0.1:1")
	if r := linnet(t, "", "dtab", "list"); r.code != 255 {
		t.Fatalf("env should win over the file: %+v", r)
	}
	linnet(t, "", "dtab", "list", "--base-url", base).want(t, 0, "x\n")
}

// Mistakes get namerctl's text on stdout (scripts read it) and, on stderr,
// what went wrong and what to do.
func TestDtabMistakesAreExplained(t *testing.T) {
	base := startTestNamerd(t)
	t.Setenv("NAMERCTL_BASE_URL", base)
	t.Chdir(t.TempDir())
	hint := func(r run, code int, out, errPart string) {
		t.Helper()
		r.want(t, code, out)
		if !strings.Contains(r.err, errPart) {
			t.Errorf("stderr = %q, want it to contain %q", r.err, errPart)
		}
	}
	// A mistyped subcommand is an error, not the help with exit 0.
	linnet(t, "", "dtab", "lst").want(t, 255, "unknown command \"lst\" for \"linnet dtab\"; did you mean \"list\"?\n")
	linnet(t, "", "dtab", "--bse-url", "x").want(t, 255, "unknown flag: --bse-url\n")
	if r := linnet(t, "", "dtab"); r.code != 0 || !strings.Contains(r.out, "namerctl") {
		t.Errorf("linnet dtab: exit %d, stdout %q; want the help", r.code, r.out)
	}

	// A bad dtab is refused before it is sent, naming the file.
	os.WriteFile("bad.dtab", []byte("svc => /a"), 0o644)
	linnet(t, "", "dtab", "update", "x", "bad.dtab").want(t, 255, "bad.dtab: invalid dtab: '/' expected but 's' found at '[s]vc => /a'\n")
	linnet(t, "/a => ", "dtab", "create", "x", "-").want(t, 255, "<stdin>: invalid dtab: simple expected but end of input found at '/a => []'\n")
	linnet(t, "", "dtab", "get", "x").want(t, 255, "resource was not found by ID or name\n") // nothing was created
	// Dtab text where the file goes.
	hint(linnet(t, "", "dtab", "update", "x", "/svc => /a;"), 255, "open /svc => /a;: no such file or directory\n",
		"not dtab text: echo '/svc => /a;' | linnet dtab update x -")

	linnet(t, "/a=>/b", "dtab", "create", "x", "-").want(t, 0, "Created x\n")
	hint(linnet(t, "/a=>/b", "dtab", "create", "x", "-"), 255, "unexpected response: 409 Conflict\n", "already exists; replace its dtab with linnet dtab update")
	hint(linnet(t, "/a=>/c", "dtab", "update", "x", "-", "--version", "AAAAAAAAAAA="), 255,
		"unexpected response: 412 Precondition Failed\n", `the dtab of "x" changed since that version`)
	hint(linnet(t, "", "dtab", "get", "y"), 255, "resource was not found by ID or name\n", `there is no namespace "y" at `+base)

	// Wrong addresses.
	hint(linnet(t, "", "dtab", "list", "--base-url", base+"/admin"), 255,
		"resource was not found by ID or name\n", "does not serve namerd's API (/api/1/dtabs answered 404)")
	hint(linnet(t, "", "dtab", "list", "--base-url", "127.0.0.1:4180"), 255,
		"invalid base URL: \"127.0.0.1:4180\"\n", "needs a scheme and a host")
	t.Setenv("NAMERCTL_BASE_URL", "")
	hint(linnet(t, "", "dtab", "list"), 255, "empty base URL\n", "no namerd address: set --base-url, $NAMERCTL_BASE_URL or base-url in .namerctl.yaml")
}
