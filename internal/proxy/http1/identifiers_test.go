package http1

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

// identifierFrom loads one `identifier:` block as the router config does.
func identifierFrom(t *testing.T, yaml string) proxy.Identifier {
	t.Helper()
	var c struct {
		Identifier config.Kinded[proxy.IdentifierConfig] `yaml:"identifier"`
	}
	if err := config.Load([]byte(yaml), &c); err != nil {
		t.Fatalf("loading %q: %v", yaml, err)
	}
	id, err := c.Identifier.Value.NewIdentifier(proxy.IdentifierEnv{DstPrefix: dtab.Path{"svc"}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestIdentifiers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, config     string
		method, target   string
		host             string
		proto10          bool
		header           [2]string
		want, wantReason string
		wantURI          string
	}{
		{name: "header.token Host", config: "identifier: {kind: io.l5d.header.token}",
			target: "/a", host: "www.hello.world:8080", want: "/svc/www.hello.world:8080"},
		{name: "header.token absent", config: "identifier: {kind: io.l5d.header.token, header: my-header}",
			target: "/a", host: "x", wantReason: "My-Header header is absent"},
		{name: "header.token custom", config: "identifier: {kind: io.l5d.header.token, header: my-header}",
			target: "/a", host: "x", header: [2]string{"My-Header", "Api.V2"}, want: "/svc/Api.V2"},
		{name: "methodAndHost", config: "identifier: {kind: io.l5d.methodAndHost}",
			method: "POST", target: "/a/b", host: "Web.Example", want: "/svc/1.1/POST/web.example"},
		{name: "methodAndHost uri", config: "identifier: {kind: io.l5d.methodAndHost, httpUriInDst: true}",
			target: "/a/b", host: "web", want: "/svc/1.1/GET/web/a/b"},
		{name: "methodAndHost 1.0", config: "identifier: {kind: io.l5d.methodAndHost}",
			target: "/a", proto10: true, want: "/svc/1.0/GET"},
		{name: "path", config: "identifier: {kind: io.l5d.path, segments: 2}",
			target: "/users/v1/7?x=1", host: "h", want: "/svc/users/v1", wantURI: "/users/v1/7?x=1"},
		{name: "path consume", config: "identifier: {kind: io.l5d.path, segments: 2, consume: true}",
			target: "/users/v1/7/?x=1", host: "h", want: "/svc/users/v1", wantURI: "/7/?x=1"},
		{name: "path consume all", config: "identifier: {kind: io.l5d.path, consume: true}",
			target: "/users", host: "h", want: "/svc/users", wantURI: "/"},
		{name: "path short", config: "identifier: {kind: io.l5d.path, segments: 3}",
			target: "/a/b", host: "h", wantReason: "not enough segments in path"},
		{name: "header path", config: "identifier: {kind: io.l5d.header}",
			target: "/", host: "h", header: [2]string{"l5d-name", "/foo/bar"}, want: "/svc/foo/bar"},
		{name: "header not a path", config: "identifier: {kind: io.l5d.header}",
			target: "/", host: "h", header: [2]string{"l5d-name", "foo"}, wantReason: "L5d-Name header is not a path"},
		{name: "static", config: "identifier: {kind: io.l5d.static, path: /web/v2}",
			target: "/", host: "h", want: "/svc/web/v2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := identifierFrom(t, c.config)
			m := c.method
			if m == "" {
				m = "GET"
			}
			r := httptest.NewRequest(m, c.target, nil)
			r.Host = c.host
			if c.proto10 {
				r.ProtoMinor = 0
				r.Host = ""
			}
			if c.header[0] != "" {
				r.Header.Set(c.header[0], c.header[1])
			}
			p, err := id.Identify(r)
			if c.wantReason != "" {
				var ue *proxy.UnidentifiedError
				if !errors.As(err, &ue) || len(ue.Reason) < len(c.wantReason) || ue.Reason[:len(c.wantReason)] != c.wantReason {
					t.Fatalf("err = %v; want unidentified: %s", err, c.wantReason)
				}
				return
			}
			if err != nil || p.String() != c.want {
				t.Fatalf("got %s, %v; want %s", p, err, c.want)
			}
			if c.wantURI != "" && r.URL.RequestURI() != c.wantURI {
				t.Errorf("forwarded URI = %s; want %s", r.URL.RequestURI(), c.wantURI)
			}
		})
	}
}

func TestIdentifierConfigErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"identifier: {kind: io.l5d.path, segments: 0}",
		"identifier: {kind: io.l5d.static}",
		"identifier: {kind: io.l5d.static, path: nope}",
		"identifier: {kind: io.l5d.header.token, headr: Host}",
	} {
		var c struct {
			Identifier config.Kinded[proxy.IdentifierConfig] `yaml:"identifier"`
		}
		if err := config.Load([]byte(bad), &c); err == nil {
			t.Errorf("%s: loaded; want an error", bad)
		}
	}
}

func TestIdentifierListTriesInOrder(t *testing.T) {
	t.Parallel()
	ids := proxy.Identifiers{
		identifierFrom(t, "identifier: {kind: io.l5d.header}"),
		identifierFrom(t, "identifier: {kind: io.l5d.header.token}"),
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "fallback"
	if p, err := ids.Identify(r); err != nil || p.String() != "/svc/fallback" {
		t.Errorf("got %s %v; want the second identifier's /svc/fallback", p, err)
	}
	r.Host = ""
	_, err := ids.Identify(r)
	if err == nil || err.Error() != "L5d-Name header is absent; Host header is absent" {
		t.Errorf("err = %v; want both reasons", err)
	}
	_ = http.MethodGet
}

// The header-token identifier remembers recent values: the answers stay
// right when values share a cache slot, an append to an answer does not
// leak into the next one, and a remembered value costs no allocation.
func TestHeaderTokenRecent(t *testing.T) {
	id := &headerToken{prefix: dtab.Path{"svc"}, header: "Host"}
	// "ab" and "cb"... differ only where slot does not look: same slot.
	hosts := []string{"www.hello.world", "xab", "yab", "zab", "world", "xab", "www.hello.world"}
	if slot("xab") != slot("yab") || slot("yab") != slot("zab") {
		t.Fatal("test values do not share a slot")
	}
	for _, h := range hosts {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = h
		p, err := id.Identify(r)
		if err != nil {
			t.Fatal(err)
		}
		if want := (dtab.Path{"svc", h}); !p.Equal(want) {
			t.Fatalf("Identify(%q) = %v, want %v", h, p, want)
		}
		_ = append(p, "residual") // must not write into a remembered path
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "www.hello.world"
	id.Identify(r)
	if n := testing.AllocsPerRun(100, func() { id.Identify(r) }); n != 0 {
		t.Errorf("%v allocations to identify a remembered host, want 0", n)
	}
}
