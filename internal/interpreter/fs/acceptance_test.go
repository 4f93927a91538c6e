package fs

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// backend serves its name on a loopback port.
func backend(t *testing.T, name string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func httpGet(t *testing.T, client *http.Client, url, host string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestRouterFollowsDtabFile runs the real linnet binary as a router with
// an io.l5d.fs interpreter over io.l5d.fs namer files: editing the dtab
// file under load moves the traffic without a single failure, an
// unparsable edit is logged and changes nothing, and the admin delegator
// and interpreter state page show the file's dtab.
func TestRouterFollowsDtabFile(t *testing.T) {
	dir := t.TempDir()
	disco := filepath.Join(dir, "disco")
	if err := os.Mkdir(disco, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(disco, "one"), fmt.Sprintf("127.0.0.1 %d\n", backend(t, "one")))
	write(t, filepath.Join(disco, "two"), fmt.Sprintf("127.0.0.1 %d\n", backend(t, "two")))
	dtabFile := filepath.Join(dir, "dtab")
	write(t, dtabFile, "/svc => /#/io.l5d.fs;\n/svc/web => /#/io.l5d.fs/one;\n")

	admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
	p := linnettest.StartRouter(t, fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
namers:
- kind: io.l5d.fs
  rootDir: %s
routers:
- protocol: http
  label: live
  interpreter:
    kind: io.l5d.fs
    dtabFile: %s
  servers:
  - ip: 127.0.0.1
    port: %d
`, admin, disco, dtabFile, port), admin)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	expect := func(what, want string) {
		t.Helper()
		var code int
		var body string
		var err error
		if !linnettest.WaitFor(10*time.Second, func() bool {
			code, body, err = httpGet(t, client, url, "web")
			return err == nil && code == 200 && body == want
		}) {
			t.Fatalf("%s: got %d %q %v; want 200 %q", what, code, body, err, want)
		}
	}
	expect("the file's dtab", "one")
	// A name the file delegates with its /svc dentry.
	if code, body, err := httpGet(t, client, url, "two"); err != nil || code != 200 || body != "two" {
		t.Fatalf("/svc/two: %d %q %v", code, body, err)
	}

	// Load while the dtab file is rewritten (atomically, by rename).
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := httpGet(t, client, url, "web")
				if err != nil || code != 200 || (body != "one" && body != "two") {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", code, body, err))
					continue
				}
				ok.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	replace(t, dtabFile, "/svc => /#/io.l5d.fs;\n/svc/web => /#/io.l5d.fs/two;\n")
	moved := linnettest.WaitFor(10*time.Second, func() bool {
		code, body, err := httpGet(t, client, url, "web")
		return err == nil && code == 200 && body == "two"
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if !moved {
		t.Fatal("traffic never moved to the new dtab's destination")
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during the dtab change; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d requests, 0 failures across the dtab change", ok.Load())

	// An unparsable edit: logged, routing unchanged.
	write(t, dtabFile, "/svc/web => => /#/io.l5d.fs/one;\n")
	if !linnettest.WaitFor(10*time.Second, func() bool {
		return strings.Contains(p.Output(), "keeping the last good dtab")
	}) {
		t.Fatalf("the bad dtab was not logged; output:\n%s", p.Output())
	}
	for range 5 {
		if code, body, err := httpGet(t, client, url, "web"); err != nil || code != 200 || body != "two" {
			t.Fatalf("after a bad edit: %d %q %v, want the last good dtab's \"two\"", code, body, err)
		}
	}

	// The admin delegator explains with the file's dtab, and the state
	// page shows it with the error.
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", admin)
	code, body, err := httpGet(t, client, adminURL+"/delegator.json?namespace=live&path=/svc/web&dtab=", "")
	if err != nil || code != 200 || !strings.Contains(body, "/#/io.l5d.fs/two") {
		t.Fatalf("delegator.json: %d %s %v", code, body, err)
	}
	code, body, err = httpGet(t, client, adminURL+"/delegator?router=live", "")
	if err != nil || code != 200 || !strings.Contains(body, `data-live="/svc =&gt; /#/io.l5d.fs;`) || !strings.Contains(body, "/svc/web =&gt; /#/io.l5d.fs/two;") {
		t.Fatalf("delegator page does not show the live dtab: %d %s %v", code, body, err)
	}
	code, body, err = httpGet(t, client, adminURL+"/live/interpreter_state/io.l5d.fs/dtab.json", "")
	if err != nil || code != 200 || !strings.Contains(body, "/#/io.l5d.fs/two") || !strings.Contains(body, "invalid dtab") {
		t.Fatalf("interpreter state: %d %s %v", code, body, err)
	}
}

// TestRouterConfigErrors: a config without dtabFile is refused naming the
// field.
func TestRouterConfigErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, linnettest.Bin(t), "router", "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf(`routers:
- protocol: http
  interpreter:
    kind: io.l5d.fs
  servers:
  - ip: 127.0.0.1
    port: %d
`, linnettest.FreePort(t)))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("router started without dtabFile:\n%s", out)
	}
	if !strings.Contains(string(out), "missing required key `dtabFile`") {
		t.Fatalf("error does not name dtabFile:\n%s", out)
	}
}
