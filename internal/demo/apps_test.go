package demo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelloCallsWorldThroughProxy(t *testing.T) {
	// A stand-in for the outgoing router: it sees proxy-form requests.
	var seen *http.Request
	router := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Clone(r.Context())
		if r.Header.Get("l5d-ctx-dtab") == "/host/world=>/srv/world-v2" {
			io.WriteString(w, "earth (10.0.0.2)")
			return
		}
		io.WriteString(w, "world (10.0.0.1)")
	}))
	defer router.Close()
	h, err := Hello("world", router.URL)
	if err != nil {
		t.Fatal(err)
	}
	hello := httptest.NewServer(h)
	defer hello.Close()

	get := func(hdr map[string]string) string {
		req, _ := http.NewRequest("GET", hello.URL, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get(nil); got != "Hello (127.0.0.1) world (10.0.0.1)!!" {
		t.Errorf("got %q", got)
	}
	if seen.Host != "world" || seen.RequestURI != "http://world/" {
		t.Errorf("router saw Host %q target %q; want a proxy-form request for http://world/", seen.Host, seen.RequestURI)
	}
	got := get(map[string]string{"l5d-ctx-dtab": "/host/world=>/srv/world-v2", "l5d-dtab": "/x=>/y", "x-other": "1"})
	if got != "Hello (127.0.0.1) earth (10.0.0.2)!!" {
		t.Errorf("with l5d-ctx-dtab: got %q", got)
	}
	if seen.Header.Get("l5d-dtab") != "" || seen.Header.Get("x-other") != "" {
		t.Errorf("hello forwarded more than l5d-ctx-* headers: %v", seen.Header)
	}
}

func TestWorldAndLayout(t *testing.T) {
	srv := httptest.NewServer(World("earth"))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "earth (127.0.0.1)" {
		t.Errorf("world-v2 answered %q", b)
	}
	l := Layout{Outgoing: 4140, Incoming: 4141, Admin: 9990, RootDir: t.TempDir()}
	if err := l.Register("hello", "127.0.0.1:7777"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(l.RootDir, "hello"))
	if err != nil || string(data) != "127.0.0.1 7777\n" {
		t.Errorf("fs file = %q, %v", data, err)
	}
	cfg := l.Config()
	for _, want := range []string{"port: 4140", "port: 4141", "port: 9990", "/host/www.hello.world => /srv/hello;", "kind: io.l5d.port"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q", want)
		}
	}
}
