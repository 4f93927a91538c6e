package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// demoRun is one running `linnet demo`.
type demoRun struct {
	out                    *syncBuffer
	in, admin, nd, ndAdmin int
	tempDir                string // the demo's temporary directory
}

// startDemo runs `linnet demo` on free ports (plus args) until the test
// ends, then stops it with Ctrl-C and checks that it exited cleanly and
// left nothing behind.
func startDemo(t *testing.T, args ...string) *demoRun {
	t.Helper()
	d := &demoRun{out: &syncBuffer{}, in: freePort(t), admin: freePort(t), nd: freePort(t), ndAdmin: freePort(t)}
	out := freePort(t)
	cmd := exec.Command(linnetBin(t), append([]string{"demo",
		fmt.Sprint("--outgoing=", out), fmt.Sprint("--incoming=", d.in), fmt.Sprint("--admin=", d.admin),
		fmt.Sprint("--namerd=", d.nd), fmt.Sprint("--namerd-admin=", d.ndAdmin)}, args...)...)
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("demo exited with %v after Ctrl-C\n%s", err, d.out)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("demo did not stop on Ctrl-C\n%s", d.out)
		}
		if d.tempDir == "" {
			return
		}
		if _, err := os.Stat(d.tempDir); !os.IsNotExist(err) {
			t.Errorf("demo left %s behind (%v)", d.tempDir, err)
			_ = os.RemoveAll(d.tempDir)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.out.String(), "Ctrl-C stops everything") {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("demo exited before serving: %v\n%s", err, d.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo did not start:\n%s", d.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := regexp.MustCompile(`(?m)^\s*io\.l5d\.fs (\S+)$`).FindStringSubmatch(d.out.String())
	if m == nil {
		t.Fatalf("demo output does not show its io.l5d.fs directory:\n%s", d.out)
	}
	d.tempDir = filepath.Dir(m[1])
	if !strings.HasPrefix(filepath.Base(d.tempDir), "linnet-demo-") {
		t.Fatalf("io.l5d.fs directory %s is not in the demo's temporary directory", m[1])
	}
	if !strings.Contains(d.out.String(), fmt.Sprintf("http://127.0.0.1:%d/", d.admin)) {
		t.Errorf("demo output does not show the admin URL:\n%s", d.out)
	}
	return d
}

const helloWorld, helloEarth = "Hello (127.0.0.1) world (127.0.0.1)!!", "Hello (127.0.0.1) earth (127.0.0.1)!!"

// walkthrough runs the equivalents of the three curl commands the demo
// prints, and pings the admin server.
func (d *demoRun) walkthrough(t *testing.T) {
	t.Helper()
	for _, c := range []string{
		fmt.Sprintf(`curl -s -H "Host: www.hello.world" 127.0.0.1:%d`, d.in),
		fmt.Sprintf(`curl -s -H "Host: www.hello.world" -H "l5d-dtab: /host/world => /srv/world-v2;" 127.0.0.1:%d`, d.in),
		fmt.Sprintf(`http_proxy=http://127.0.0.1:%d curl -s http://hello`, d.in),
	} {
		if !strings.Contains(d.out.String(), "  "+c+"\n") {
			t.Errorf("demo output lacks %s\n%s", c, d.out)
		}
	}
	u := fmt.Sprintf("http://127.0.0.1:%d/", d.in)
	if code, _, body := send(t, "GET", u, "www.hello.world", nil, nil); code != 200 || body != helloWorld {
		t.Errorf("curl -H 'Host: www.hello.world': %d %q; want %q", code, body, helloWorld)
	}
	if code, _, body := send(t, "GET", u, "www.hello.world",
		map[string]string{"l5d-dtab": "/host/world => /srv/world-v2;"}, nil); code != 200 || body != helloEarth {
		t.Errorf("with l5d-dtab to world-v2: %d %q; want %q", code, body, helloEarth)
	}
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", d.in))
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != helloWorld {
		t.Errorf("http_proxy=... curl http://hello: %q; want %q", b, helloWorld)
	}
	if code, _, body := send(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/admin/ping", d.admin), "", nil, nil); code != 200 || body != "pong" {
		t.Errorf("admin ping: %d %q", code, body)
	}
}

// printedCommand finds the printed command line containing marker and
// returns its words, with the binary replaced by the one under test.
func (d *demoRun) printedCommand(t *testing.T, marker string) []string {
	t.Helper()
	for _, line := range strings.Split(d.out.String(), "\n") {
		if strings.Contains(line, marker) {
			w := strings.Fields(line)
			w[0] = linnetBin(t)
			return w
		}
	}
	t.Fatalf("demo output has no %q command:\n%s", marker, d.out)
	return nil
}

func run(t *testing.T, words []string) string {
	t.Helper()
	out, err := exec.Command(words[0], words[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(words, " "), err, out)
	}
	return string(out)
}

// helloClient sends the walkthrough's first curl and counts every answer
// that is not world's or earth's.
type helloClient struct {
	url    string
	c      *http.Client
	total  atomic.Int64
	failed atomic.Int64
	mu     sync.Mutex
	errs   []string
}

func (h *helloClient) get() string {
	h.total.Add(1)
	req, _ := http.NewRequest("GET", h.url, nil)
	req.Host = "www.hello.world"
	resp, err := h.c.Do(req)
	var body string
	if err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		body, err = string(b), rerr
		if err == nil && (resp.StatusCode != 200 || (body != helloWorld && body != helloEarth)) {
			err = fmt.Errorf("%d %q (l5d-err %q)", resp.StatusCode, body, resp.Header.Get("l5d-err"))
		}
	}
	if err != nil {
		h.failed.Add(1)
		h.mu.Lock()
		if len(h.errs) < 5 {
			h.errs = append(h.errs, err.Error())
		}
		h.mu.Unlock()
		return ""
	}
	return body
}

// TestDemo runs `linnet demo` with namerd: the walkthrough's three
// commands, then its namerd step (a 9:1 canary of world-v2, then a full
// switch) with `linnet dtab update`, under load, without a failed request.
func TestDemo(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	d.walkthrough(t)

	if code, _, body := send(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/admin/ping", d.ndAdmin), "", nil, nil); code != 200 || body != "pong" {
		t.Errorf("namerd admin ping: %d %q", code, body)
	}
	if !strings.Contains(d.out.String(), fmt.Sprintf("namerd admin (dtabs, metrics): http://127.0.0.1:%d/", d.ndAdmin)) {
		t.Errorf("demo output does not show namerd's admin URL:\n%s", d.out)
	}
	base := fmt.Sprintf("--base-url http://127.0.0.1:%d", d.nd)
	get := d.printedCommand(t, " dtab get internal "+base)
	if got := run(t, get); !strings.Contains(got, "/srv/world-v1") || !strings.Contains(got, "/host/www.hello.world") {
		t.Errorf("%s printed %q; want the walkthrough's dtab", strings.Join(get, " "), got)
	}
	canary := d.printedCommand(t, "canary.dtab "+base)
	switchAll := d.printedCommand(t, "world-v2.dtab "+base)
	if canary[2] != "update" || switchAll[2] != "update" {
		t.Fatalf("unexpected commands %q, %q", canary, switchAll)
	}

	h := &helloClient{url: fmt.Sprintf("http://127.0.0.1:%d/", d.in),
		c: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	// Background load across both dtab updates.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					h.get()
				}
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	for range 20 {
		if got := h.get(); got != helloWorld && got != "" {
			t.Fatalf("before the canary: %q; want %q", got, helloWorld)
		}
	}

	if got := run(t, canary); !strings.Contains(got, "Updated internal") {
		t.Errorf("%s: %q", strings.Join(canary, " "), got)
	}
	// The first earth shows the routers follow the new dtab.
	start := time.Now()
	for h.get() != helloEarth {
		if time.Since(start) > 10*time.Second {
			t.Fatal("no request reached world-v2 within 10s of the canary update")
		}
	}
	t.Logf("canary visible after %v", time.Since(start).Round(time.Millisecond))
	// 1 in 10 to earth: 300 requests give 30 on average (σ≈5.2); accept 9..60.
	const n = 300
	earth := 0
	for range n {
		if h.get() == helloEarth {
			earth++
		}
	}
	t.Logf("canary: %d of %d requests to world-v2", earth, n)
	if earth < 9 || earth > 60 {
		t.Errorf("canary sent %d of %d requests to world-v2; want about 10%%", earth, n)
	}

	if got := run(t, switchAll); !strings.Contains(got, "Updated internal") {
		t.Errorf("%s: %q", strings.Join(switchAll, " "), got)
	}
	// 20 earths in a row (p = 1e-20 under the canary) mark the switch.
	start = time.Now()
	for inRow := 0; inRow < 20; {
		if h.get() == helloEarth {
			inRow++
		} else {
			inRow = 0
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("world-v2 did not take all the traffic within 10s of the switch")
		}
	}
	for i := range 100 {
		if got := h.get(); got != helloEarth {
			t.Fatalf("after the switch, request %d: %q; want %q", i, got, helloEarth)
		}
	}
	stopLoad()
	if f := h.failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed during the dtab updates: %v", f, h.total.Load(), h.errs)
	}
	t.Logf("%d requests, %d failed", h.total.Load(), h.failed.Load())
}

// TestDemoNoNamerd runs the stand-alone layout: the routers carry the
// dtab, and no namerd listens.
func TestDemoNoNamerd(t *testing.T) {
	t.Parallel()
	d := startDemo(t, "--no-namerd")
	d.walkthrough(t)
	if strings.Contains(d.out.String(), "dtab update") {
		t.Errorf("--no-namerd output shows the namerd step:\n%s", d.out)
	}
	for _, p := range []int{d.nd, d.ndAdmin} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			t.Errorf("with --no-namerd, port %d (a namerd flag) accepts connections", p)
		}
	}
}

// TestDemoPortInUse: a taken port stops the demo at once with an error
// naming the flag to change.
func TestDemoPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	cmd := exec.Command(linnetBin(t), "demo", fmt.Sprint("--outgoing=", freePort(t)), fmt.Sprint("--incoming=", freePort(t)),
		fmt.Sprint("--admin=", freePort(t)), fmt.Sprint("--namerd=", taken), fmt.Sprint("--namerd-admin=", freePort(t)))
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("demo kept running with namerd's port taken:\n%s", out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v; want status 1", err)
	}
	if !strings.Contains(string(out), "--namerd") || !strings.Contains(string(out), fmt.Sprint(taken)) {
		t.Errorf("output does not name the taken port and its flag:\n%s", out)
	}
}
