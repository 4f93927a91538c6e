package observability

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// `linnet demo` prints the dashboard's URL, and that URL serves the
// dashboard page.
func TestDemoPrintsDashboardURL(t *testing.T) {
	t.Parallel()
	ports := make([]int, 5)
	for i := range ports {
		ports[i] = linnettest.FreePort(t)
	}
	cmd := exec.Command(linnettest.Bin(t), "demo",
		fmt.Sprint("--outgoing=", ports[0]), fmt.Sprint("--incoming=", ports[1]), fmt.Sprint("--admin=", ports[2]),
		fmt.Sprint("--namerd=", ports[3]), fmt.Sprint("--namerd-admin=", ports[4]))
	out := &linnettest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("demo did not stop on Ctrl-C\n%s", out)
		}
	})
	if !linnettest.WaitFor(20*time.Second, func() bool { return strings.Contains(out.String(), "Ctrl-C stops everything") }) {
		t.Fatalf("demo did not start:\n%s", out)
	}
	m := regexp.MustCompile(`(?m)^Admin \(dashboard[^)]*\): (http://\S+/)$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("demo output has no dashboard URL line:\n%s", out)
	}
	if want := fmt.Sprintf("http://127.0.0.1:%d/", ports[2]); m[1] != want {
		t.Errorf("dashboard URL %s, want %s", m[1], want)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<title>linnet dashboard</title>") {
		t.Errorf("%s answered %d, not the dashboard:\n%.300s", m[1], resp.StatusCode, page)
	}
}
