package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `linnet demo` and the walkthrough's three commands.
func TestDemo(t *testing.T) {
	t.Parallel()
	out, in, admin := freePort(t), freePort(t), freePort(t)
	cmd := exec.Command(linnetBin(t), "demo",
		fmt.Sprint("--outgoing=", out), fmt.Sprint("--incoming=", in), fmt.Sprint("--admin=", admin))
	stdout := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("demo exited with %v after Ctrl-C\n%s", err, stdout)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Errorf("demo did not stop on Ctrl-C\n%s", stdout)
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(stdout.String(), "Ctrl-C stops everything") {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not start:\n%s", stdout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(stdout.String(), fmt.Sprintf("http://127.0.0.1:%d/", admin)) {
		t.Errorf("demo output does not show the admin URL:\n%s", stdout)
	}
	u := fmt.Sprintf("http://127.0.0.1:%d/", in)
	want := "Hello (127.0.0.1) world (127.0.0.1)!!"
	if code, _, body := send(t, "GET", u, "www.hello.world", nil, nil); code != 200 || body != want {
		t.Errorf("curl -H 'Host: www.hello.world': %d %q; want %q", code, body, want)
	}
	if code, _, body := send(t, "GET", u, "www.hello.world",
		map[string]string{"l5d-dtab": "/host/world => /srv/world-v2;"}, nil); code != 200 || body != "Hello (127.0.0.1) earth (127.0.0.1)!!" {
		t.Errorf("with l5d-dtab to world-v2: %d %q; want earth", code, body)
	}
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", in))
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err := c.Get("http://hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != want {
		t.Errorf("http_proxy=... curl http://hello: %q; want %q", b, want)
	}
	if code, _, body := send(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/admin/ping", admin), "", nil, nil); code != 200 || body != "pong" {
		t.Errorf("admin ping: %d %q", code, body)
	}
}
