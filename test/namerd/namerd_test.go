package namerd

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/storage/etcd/etcdtest"
)

func namerdConfig(adminPort, apiPort int, storage string) string {
	return fmt.Sprintf(`admin:
  port: %d
storage:
%s
interfaces:
- kind: io.l5d.httpController
  port: %d
`, adminPort, storage, apiPort)
}

// With the durable file store, nothing acknowledged is lost when namerd
// is killed (SIGKILL) or stopped and started again; versions survive.
func TestFileStoreSurvivesNamerdRestarts(t *testing.T) {
	adminPort, apiPort := freePort(t), freePort(t)
	cfg := namerdConfig(adminPort, apiPort, "  kind: io.linnet.file\n  dir: "+t.TempDir())
	nd := start(t, "namerd", cfg, adminPort)
	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)

	dtabCLI(t, base, "/svc => /#/io.l5d.fs;\n", "create", "default", "-").want(t, 0, "Created default\n")
	for i := range 20 {
		dtabCLI(t, base, fmt.Sprintf("/svc=>/#/io.l5d.fs/v%d", i), "update", fmt.Sprintf("ns%d", i%3), "-").want(t, 0, fmt.Sprintf("Updated ns%d\n", i%3))
	}
	before := dtabCLI(t, base, "", "get", "ns2", "--json")

	nd.Restart(syscall.SIGKILL)
	dtabCLI(t, base, "", "list").want(t, 0, "default\nns0\nns1\nns2\n")
	dtabCLI(t, base, "", "get", "ns2", "--json").want(t, 0, before.out)
	dtabCLI(t, base, "", "get", "ns1", "--pretty=false").want(t, 0, "/svc=>/#/io.l5d.fs/v19;\n")

	nd.Restart(syscall.SIGTERM)
	dtabCLI(t, base, "", "get", "ns2", "--json").want(t, 0, before.out)
}

// namerd on a real etcd: namerctl exchanges, watch streams that survive an
// etcd crash, and restarts of etcd and of namerd that lose nothing.
func TestEtcdStoreWithRestarts(t *testing.T) {
	etcd := etcdtest.Start(t)
	host, port, _ := strings.Cut(etcd.Endpoint(), ":")
	adminPort, apiPort := freePort(t), freePort(t)
	cfg := namerdConfig(adminPort, apiPort, fmt.Sprintf("  kind: io.l5d.etcd\n  experimental: true\n  host: %s\n  port: %s\n  pathPrefix: /test/dtabs", host, port))
	nd := start(t, "namerd", cfg, adminPort)
	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)

	dtabCLI(t, base, "/svc => /#/io.l5d.fs/v1;", "create", "default", "-").want(t, 0, "Created default\n")
	dtabCLI(t, base, "/a=>/b", "create", "default", "-").want(t, 255, "unexpected response: 409 Conflict\n")

	// A watch stream on namerd follows etcd through an etcd crash.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/1/dtabs/default?watch=true", nil)
	req.Header.Set("Accept", "application/dtab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(want string) {
		t.Helper()
		select {
		case l := <-lines:
			if l != want {
				t.Fatalf("stream: got %q, want %q", l, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("stream: %q not received\nnamerd output:\n%s", want, nd.Output())
		}
	}
	next("/svc=>/#/io.l5d.fs/v1")

	etcd.Kill()
	// namerd answers storage errors while etcd is down.
	if r := dtabCLI(t, base, "/svc=>/x", "update", "default", "-"); r.code != 255 || !strings.Contains(r.out, "500") {
		t.Fatalf("update while etcd is down: %+v", r)
	}
	etcd.Restart()
	retryCLI(t, base, "/svc => /#/io.l5d.fs/v2;", "update", "default", "-")
	next("/svc=>/#/io.l5d.fs/v2")

	// Optimistic concurrency through namerd's ETag.
	got := dtabCLI(t, base, "", "get", "default", "--json")
	edited := strings.Replace(got.out, "v2", "v3", 1)
	dtabCLI(t, base, edited, "update", "default", "-").want(t, 0, "Updated default\n")
	dtabCLI(t, base, edited, "update", "default", "-").want(t, 255, "unexpected response: 412 Precondition Failed\n")
	next("/svc=>/#/io.l5d.fs/v3")

	// Restart namerd, then etcd cleanly: everything is still there.
	nd.Restart(syscall.SIGKILL)
	etcd.Restart()
	r := retryCLI(t, base, "", "get", "default", "--pretty=false")
	if r.out != "/svc=>/#/io.l5d.fs/v3;\n" {
		t.Fatalf("after restarts: %q", r.out)
	}
	dtabCLI(t, base, "", "list").want(t, 0, "default\n")
}

// retryCLI repeats a dtab command until it succeeds (namerd's etcd client
// reconnects on its own schedule), for at most 15 seconds.
func retryCLI(t *testing.T, base, stdin string, args ...string) cliResult {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := dtabCLI(t, base, stdin, args...)
		if r.code == 0 {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("linnet dtab %v kept failing: %+v", args, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestValidate(t *testing.T) {
	good := namerdConfig(9991, 4180, "  kind: io.l5d.inMemory\n  namespaces:\n    default: /svc => /#/io.l5d.fs")
	cmd := exec.Command(linnetBin(t), "namerd", "-validate", "-")
	cmd.Stdin = strings.NewReader(good)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration is valid") {
		t.Fatalf("valid config: %v\n%s", err, out)
	}
	bad := namerdConfig(9991, 4180, "  kind: io.l5d.inMemory\n  namespaces:\n    default: /svc => ")
	cmd = exec.Command(linnetBin(t), "namerd", "-validate", "-")
	cmd.Stdin = strings.NewReader(bad)
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "storage.namespaces.default") {
		t.Fatalf("invalid config: %v\n%s", err, out)
	}
}
