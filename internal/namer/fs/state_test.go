package fs

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestState(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "hello"), "127.1 8888\n10.0.0.5 80\n")
	write(t, filepath.Join(dir, "sub", "inner"), "::1 7000\n")
	write(t, filepath.Join(dir, "bad"), "127.0.0.1 http\n")
	n := newNamer(t, dir)
	n.Lookup(p("/hello/x"))
	b, err := json.Marshal(n.State())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RootDir string               `json:"rootDir"`
		Names   map[string]NameState `json:"names"`
		Lookups []string             `json:"lookups"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.RootDir != dir || len(got.Names) != 3 || strings.Join(got.Lookups, " ") != "/hello/x" {
		t.Fatalf("state %s; want rootDir %s, 3 names and the lookup /hello/x", b, dir)
	}
	if h := got.Names["hello"]; h.State != "bound" || strings.Join(h.Addresses, " ") != "10.0.0.5:80 127.0.0.1:8888" {
		t.Errorf("hello: %+v; want bound [10.0.0.5:80 127.0.0.1:8888]", h)
	}
	if s := got.Names["sub/inner"]; s.State != "bound" || strings.Join(s.Addresses, " ") != "[::1]:7000" {
		t.Errorf("sub/inner: %+v; want bound [[::1]:7000]", s)
	}
	if bad := got.Names["bad"]; bad.State != "failed" || !strings.Contains(bad.Error, `port "http"`) || len(bad.Addresses) != 0 {
		t.Errorf("bad: %+v; want failed naming the bad port", bad)
	}
}
