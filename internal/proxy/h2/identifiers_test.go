package h2

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

type identCase struct {
	name    string
	cfg     proxy.IdentifierConfig
	req     func() *http.Request
	want    string // "" when unidentified
	wantErr string
}

func h2Req(method, target, authority string, hdr ...string) func() *http.Request {
	return func() *http.Request {
		r := httptest.NewRequest(method, target, nil)
		r.Host = authority
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Add(hdr[i], hdr[i+1])
		}
		return r
	}
}

func TestIdentifiers(t *testing.T) {
	env := proxy.IdentifierEnv{DstPrefix: dtab.Path{"svc"}}
	for _, tc := range []identCase{
		{"token on :authority", &HeaderTokenConfig{Header: ":authority"}, h2Req("GET", "/x", "web.example:8080"), "/svc/web.example:8080", ""},
		{"token absent :authority", &HeaderTokenConfig{Header: ":authority"}, h2Req("GET", "/x", ""), "", ":authority header is absent"},
		{"token on a header, last wins", &HeaderTokenConfig{Header: "x-name"}, h2Req("GET", "/", "a", "X-Name", "one", "X-Name", "two"), "/svc/two", ""},
		{"token on :method", &HeaderTokenConfig{Header: ":method"}, h2Req("PUT", "/", "a"), "/svc/PUT", ""},
		{"path, gRPC service", &HeaderPathConfig{Header: ":path", Segments: 1}, h2Req("POST", "/helloworld.Greeter/SayHello", "a"), "/svc/helloworld.Greeter", ""},
		{"path, all segments", &HeaderPathConfig{Header: ":path"}, h2Req("POST", "/helloworld.Greeter/SayHello?x=1", "a"), "/svc/helloworld.Greeter/SayHello", ""},
		{"path, too few segments", &HeaderPathConfig{Header: ":path", Segments: 3}, h2Req("POST", "/a/b", "a"), "", "fewer than 3 segments"},
		{"path from a header", &HeaderPathConfig{Header: "l5d-name", Segments: 2}, h2Req("GET", "/", "a", "L5d-Name", "/foo/bar/baz"), "/svc/foo/bar", ""},
		{"path header not a path", &HeaderPathConfig{Header: "l5d-name"}, h2Req("GET", "/", "a", "L5d-Name", "foo"), "", "is not a path"},
		{"path of root", &HeaderPathConfig{Header: ":path"}, h2Req("GET", "/", "a"), "", "names no path segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.cfg.NewIdentifier(env)
			if err != nil {
				t.Fatal(err)
			}
			p, err := id.Identify(tc.req())
			if tc.want == "" {
				var ue *proxy.UnidentifiedError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Identify = %v, %v; want an UnidentifiedError containing %q", p, err, tc.wantErr)
				}
				return
			}
			if err != nil || p.String() != tc.want {
				t.Fatalf("Identify = %v, %v; want %s", p, err, tc.want)
			}
		})
	}
}

// h2Router is the shape the lead's H2Router identifier field takes: a
// list decoded through the h2 extension point.
type h2Router struct {
	Identifier config.List[config.Kinded[IdentifierConfig]] `yaml:"identifier"`
}

func TestIdentifierConfigDecoding(t *testing.T) {
	var r h2Router
	err := config.Load([]byte("identifier:\n- kind: io.l5d.header.path\n  segments: 1\n- kind: io.l5d.header.token\n"), &r)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Identifier) != 2 {
		t.Fatalf("decoded %d identifiers, want 2", len(r.Identifier))
	}
	if c, ok := r.Identifier[0].Value.(*HeaderPathConfig); !ok || c.Header != ":path" || c.Segments != 1 {
		t.Errorf("identifier[0] = %#v, want header.path on :path with 1 segment", r.Identifier[0].Value)
	}
	if c, ok := r.Identifier[1].Value.(*HeaderTokenConfig); !ok || c.Header != ":authority" {
		t.Errorf("identifier[1] = %#v, want header.token defaulting to :authority", r.Identifier[1].Value)
	}

	for _, tc := range []struct{ text, want string }{
		{"identifier:\n  kind: io.l5d.header.token\n  header: \":bogus\"\n", "unknown pseudo-header"},
		{"identifier:\n  kind: io.l5d.header.path\n  segments: -1\n", "segments"},
		{"identifier:\n  kind: io.l5d.ingress\n", "not supported"},
		{"identifier:\n  kind: io.l5d.header.tokn\n", "io.l5d.header.token"},
	} {
		var r h2Router
		err := config.Load([]byte(tc.text), &r)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q) = %v, want an error containing %q", tc.text, err, tc.want)
		}
	}
}

func TestDefaultIdentifier(t *testing.T) {
	id := DefaultIdentifier(proxy.IdentifierEnv{DstPrefix: dtab.Path{"svc"}})
	p, err := id.Identify(h2Req("GET", "/", "hello.world")())
	if err != nil || p.String() != "/svc/hello.world" {
		t.Fatalf("default identifier = %v, %v; want /svc/hello.world", p, err)
	}
}
