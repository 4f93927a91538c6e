package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestPathPattern(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          string // fmt of vars, or "no"
	}{
		{"/{port}/{ns}/{svc}", "/http/default/hello/extra", "map[ns:default port:http svc:hello]"},
		{"/{port}/{ns}/{svc}", "/http/default", "no"},
		{"/$/io.buoyant.rinet/443/{service}", "/$/io.buoyant.rinet/443/example.com", "map[service:example.com]"},
		{"/$/io.buoyant.rinet/443/{service}", "/$/io.buoyant.rinet/80/example.com", "no"},
		{"/*/x", "/anything/x/y", "map[]"},
		{"/pre{a}-{b}post", "/pre1-2-3post", "map[a:1-2 b:3]"},
		{"/pre{a}post", "/prepost", "map[a:]"},
		{"/pre{a}post", "/pre.post2", "no"},
		{"/", "/a/b", "map[]"},
	}
	for _, tt := range tests {
		p, err := ParsePathPattern(tt.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		vars, ok := p.Match(strings.Split(strings.Trim(tt.path, "/"), "/"))
		got := "no"
		if ok {
			got = fmt.Sprint(vars)
		}
		if got != tt.want {
			t.Errorf("%s ~ %s = %s, want %s", tt.pattern, tt.path, got, tt.want)
		}
	}
	for _, bad := range []string{"x/y", "/a//b", "/{a}/{a}", "/{}", "/a{b", "/a}b", "/{a b}"} {
		if _, err := ParsePathPattern(bad); err == nil {
			t.Errorf("ParsePathPattern(%q) accepted", bad)
		}
	}
}

func TestExpand(t *testing.T) {
	got, err := Expand("/k8s/{ns}/{port}/{svc}", map[string]string{"ns": "default", "port": "http", "svc": "hello"})
	if err != nil || got != "/k8s/default/http/hello" {
		t.Errorf("Expand = %q, %v", got, err)
	}
	if _, err := Expand("/{nope}", map[string]string{}); err == nil {
		t.Error("Expand with a missing var succeeded")
	}
}

func TestPathPatternField(t *testing.T) {
	var dst struct {
		P PathPattern `yaml:"pattern"`
	}
	if err := Load([]byte("pattern: /{a}/b\n"), &dst); err != nil || dst.P.String() != "/{a}/b" || dst.P.Len() != 2 {
		t.Fatalf("got %v, %v", dst.P, err)
	}
	err := Load([]byte("\npattern: a/b\n"), &dst)
	if err == nil || err.Error() != `pattern: pattern "a/b" must start with '/' (line 2)` {
		t.Errorf("err = %v", err)
	}
}
