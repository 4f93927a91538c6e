package ingress

import (
	"errors"
	"testing"

	kapi "github.com/linnet-mesh/linnet/internal/k8s"
)

func be(svc, port string) kapi.IngressBackend { return kapi.IngressBackend{Service: svc, Port: port} }

func TestMatch(t *testing.T) {
	ings := []kapi.Ingress{
		{Namespace: "default", Name: "other-controller", HasClassAnnotation: true, ClassAnnotation: "nginx",
			Rules: []kapi.IngressRule{{Paths: []kapi.IngressPath{{Backend: be("nginx-only", "80")}}}}},
		{Namespace: "default", Name: "other-class-name", ClassName: "traefik",
			Rules: []kapi.IngressRule{{Paths: []kapi.IngressPath{{Backend: be("traefik-only", "80")}}}}},
		{Namespace: "", Name: "hello", HasClassAnnotation: true, ClassAnnotation: "linkerd",
			DefaultBackend: &kapi.IngressBackend{Service: "fallback", Port: "http"},
			Rules: []kapi.IngressRule{
				{Host: "www.hello.world", Paths: []kapi.IngressPath{{Backend: be("hello", "http")}}},
				{Host: "api.hello.world", Paths: []kapi.IngressPath{
					{Path: "/testpath", Backend: be("test", "80")},
					{Path: "/v[0-9]+/.*", PathType: "ImplementationSpecific", Backend: be("versioned", "http")},
					{Path: "/exact", PathType: "Exact", Backend: be("exact", "http")},
					{Path: "/pre/", PathType: "Prefix", Backend: be("prefixed", "http")},
					{Path: "/bad(", Backend: be("never", "http")},
				}},
				{Host: "*.wild.world", Paths: []kapi.IngressPath{{Backend: be("wild", "http")}}},
			}},
		{Namespace: "team", Name: "by-class-name", ClassName: "linkerd",
			DefaultBackend: &kapi.IngressBackend{Service: "second-fallback", Port: "http"},
			Rules:          []kapi.IngressRule{{Host: "team.world", Paths: []kapi.IngressPath{{Backend: be("team-svc", "8080")}}}}},
	}
	var bad []string
	s := compile(ings, "linkerd", false, func(ing kapi.Ingress, path string, err error) { bad = append(bad, path) })
	if len(bad) != 1 || bad[0] != "/bad(" {
		t.Errorf("invalid paths reported: %v", bad)
	}
	for _, tc := range []struct {
		host, path string
		want       string // ns/port/svc, or "" for no match
	}{
		{"www.hello.world", "/", "default/http/hello"},
		{"WWW.Hello.World:4142", "/anything/at/all", "default/http/hello"},
		{"api.hello.world", "/testpath", "default/80/test"},
		{"api.hello.world", "/testpath/x", "default/http/fallback"}, // the regexp must match the whole path
		{"api.hello.world", "/v2/users", "default/http/versioned"},
		{"api.hello.world", "/vx/users", "default/http/fallback"},
		{"api.hello.world", "/exact", "default/http/exact"},
		{"api.hello.world", "/exact/", "default/http/fallback"},
		{"api.hello.world", "/pre", "default/http/prefixed"},
		{"api.hello.world", "/pre/a/b", "default/http/prefixed"},
		{"api.hello.world", "/prefix", "default/http/fallback"},
		{"api.hello.world", "/bad(", "default/http/fallback"},
		{"a.wild.world", "/", "default/http/wild"},
		{"a.b.wild.world", "/", "default/http/fallback"},
		{"wild.world", "/", "default/http/fallback"},
		{"team.world", "/x", "team/8080/team-svc"}, // ingressClassName selects too
		{"[::1]:80", "/", "default/http/fallback"},
		{"elsewhere", "/", "default/http/fallback"}, // first default backend, after every rule
	} {
		r, ok := s.match(tc.host, tc.path)
		got := ""
		if ok {
			got = r.ns + "/" + r.backend.Port + "/" + r.backend.Service
		}
		if got != tc.want {
			t.Errorf("%s %s: got %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}

	s = compile(ings, "linkerd", true, nil)
	if r, ok := s.match("elsewhere", "/"); ok {
		t.Errorf("ignoreDefaultBackends: matched %+v", r)
	}
	s = compile(ings, "nginx", false, nil)
	if r, ok := s.match("anything", "/"); !ok || r.backend.Service != "nginx-only" {
		t.Errorf("class nginx: got %+v %v", r, ok)
	}
}

func TestOurs(t *testing.T) {
	for _, tc := range []struct {
		ing  kapi.Ingress
		want bool
	}{
		{kapi.Ingress{}, true},
		{kapi.Ingress{HasClassAnnotation: true, ClassAnnotation: "linkerd"}, true},
		{kapi.Ingress{HasClassAnnotation: true, ClassAnnotation: "nginx"}, false},
		{kapi.Ingress{HasClassAnnotation: true, ClassAnnotation: "linkerd", ClassName: "nginx"}, true},
		{kapi.Ingress{ClassName: "linkerd"}, true},
		{kapi.Ingress{ClassName: "nginx"}, false},
	} {
		if got := ours(tc.ing, "linkerd"); got != tc.want {
			t.Errorf("%+v: got %v, want %v", tc.ing, got, tc.want)
		}
	}
}

func TestPrefixMatches(t *testing.T) {
	for _, tc := range []struct {
		prefix, path string
		want         bool
	}{
		{"/", "/anything", true},
		{"/foo", "/foo", true},
		{"/foo", "/foo/", true},
		{"/foo/", "/foo", true},
		{"/foo", "/foo/bar", true},
		{"/foo", "/foobar", false},
		{"/foo/bar", "/foo", false},
	} {
		if got := prefixMatches(tc.prefix, tc.path); got != tc.want {
			t.Errorf("prefixMatches(%q, %q) = %v, want %v", tc.prefix, tc.path, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := &Config{}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	c.Port = 0
	if err := c.Validate(); err == nil {
		t.Error("port 0 accepted")
	}
	c.SetDefaults()
	c.InCluster, c.Kubeconfig = true, "/x"
	if err := c.Validate(); err == nil {
		t.Error("inCluster with kubeconfig accepted")
	}
	var e interface{ Error() string }
	if !errors.As(c.Validate(), &e) {
		t.Error("no error")
	}
}
