package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDtabEvalGolden runs `linnet dtab eval` and compares exit status,
// stdout and stderr with testdata/dtab_eval/<case>.golden. Set
// LINNET_UPDATE_GOLDEN=1 to rewrite the files.
func TestDtabEvalGolden(t *testing.T) {
	const disco = "testdata/dtab_eval/disco"
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dtabFile := filepath.Join(t.TempDir(), "dtab")
	if err = os.WriteFile(dtabFile, []byte("# from a file\n/svc => /#/io.l5d.fs;\n/svc/world => /$/inet/127.0.0.1/8080;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"delegate", []string{"--fs-root", disco, "--dtab", "/srv => /#/io.l5d.fs; /svc => /srv", "/svc/world/api"}},
		{"alternatives", []string{"--fs-root", disco, "--dtab", "/svc => /#/io.l5d.fs; /svc/world => /#/io.l5d.fs/missing | /$/nil", "/svc/world"}},
		{"union", []string{"--fs-root", disco, "--dtab", "/svc => /#/io.l5d.fs; /svc/split => 3 * /#/io.l5d.fs/eu/hello & /#/io.l5d.fs/world & /#/io.l5d.fs/broken", "/svc/split"}},
		{"rewrite-namer", []string{"--dtab", "/svc => /$/io.buoyant.http.domainToPathPfx/host; /host/com/example => /$/inet/127.1/8080", "/svc/example.com"}},
		{"no-match", []string{"--dtab", "/svc => /#/io.l5d.fs", "/other"}},
		{"unknown-namer", []string{"--dtab", "/svc => /$/com.example.Nope | /$/inet/127.0.0.1/1", "/svc/x"}},
		{"json", []string{"--json", "--fs-root", disco, "--dtab", "/svc => /#/io.l5d.fs; /svc/world => /#/io.l5d.fs/missing", "/svc/world"}},
		{"dtab-file", []string{"--dtab-file", dtabFile, "/svc/world"}},
		{"bad-dtab", []string{"--dtab", "/svc => /#/io.l5d.fs;;", "/svc"}},
		{"bad-path", []string{"--dtab", "/svc => /#/io.l5d.fs", "svc/world"}},
		{"loop", []string{"--dtab", "/a => /b; /b => /a", "/a"}},
		{"missing-fs-root", []string{"--fs-root", "testdata/dtab_eval/nowhere", "--dtab", "/svc => /#/io.l5d.fs", "/svc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(append([]string{"dtab", "eval"}, tc.args...), strings.NewReader(""), &out, &errb)
			got := fmt.Sprintf("exit: %d\n--- stdout\n%s--- stderr\n%s", code, out.String(), errb.String())
			got = strings.ReplaceAll(got, cwd, "$CWD") // the fs namer reports absolute paths
			golden := filepath.Join("testdata", "dtab_eval", tc.name+".golden")
			if os.Getenv("LINNET_UPDATE_GOLDEN") != "" {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with LINNET_UPDATE_GOLDEN=1 to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}
