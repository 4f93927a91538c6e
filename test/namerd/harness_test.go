// Package namerd runs the real linnet binary as namerd (and as the
// namerctl-compatible CLI, and as a router following namerd) with real
// peers (etcd) on loopback.
package namerd

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// linnetBin returns the binary under test (see linnettest.Bin).
func linnetBin(t *testing.T) string { return linnettest.Bin(t) }

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int { return linnettest.FreePort(t) }

// start runs `linnet <role> -` (namerd or router) with config on stdin,
// waits until its admin server on adminPort answers /admin/ping, and stops
// it by PID (SIGTERM) when the test ends. Restart(sig) brings it back with
// the same configuration and ports.
func start(t *testing.T, role, config string, adminPort int) *linnettest.Proc {
	t.Helper()
	return linnettest.Start(t, linnettest.Options{
		Args:  []string{role, "-"},
		Stdin: config,
		Ready: fmt.Sprintf("http://127.0.0.1:%d/admin/ping", adminPort),
	})
}

// cli runs `linnet dtab ...` against namerd at base.
type cliResult struct {
	code int
	out  string
}

func dtabCLI(t *testing.T, base, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(linnetBin(t), append([]string{"dtab"}, args...)...)
	cmd.Env = append(os.Environ(), "NAMERCTL_BASE_URL="+base)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = io.Discard
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{code, out.String()}
}

func (r cliResult) want(t *testing.T, code int, out string) {
	t.Helper()
	if r.code != code || r.out != out {
		t.Fatalf("linnet dtab: exit %d, stdout %q; want exit %d, stdout %q", r.code, r.out, code, out)
	}
}
