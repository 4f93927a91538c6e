package h2

import (
	"net/http"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

// IdentifierConfig is the extension point of h2 identifiers. It is a
// separate point from proxy.IdentifierConfig because Linkerd gives the
// same kind different defaults per protocol: io.l5d.header.token reads
// Host on http routers and :authority on h2 routers, and one registry
// cannot hold both under one name. An h2 router's `identifier:` field
// decodes through this point: config.List[config.Kinded[h2.IdentifierConfig]].
type IdentifierConfig interface {
	proxy.IdentifierConfig
}

// The HTTP/2 identifiers of spec/config.md §4.4. Like Linkerd, an http
// router does not accept io.l5d.header.path, nor an h2 router the
// HTTP/1.1-only kinds. io.l5d.ingress is registered here by
// internal/k8s/ingress, which takes precedence over this declaration; a
// build without the Kubernetes plug-ins (linnet_slim) refuses it as
// unsupported, with the build's note.
func init() {
	config.Register[IdentifierConfig](KindHeaderToken, func() IdentifierConfig { return &HeaderTokenConfig{Header: ":authority"} })
	config.Register[IdentifierConfig](KindHeaderPath, func() IdentifierConfig { return &HeaderPathConfig{Header: ":path"} })
	config.RegisterUnsupported[IdentifierConfig]("io.l5d.ingress", "io.l5d.k8s.istio")
}

// The h2 identifier kinds.
const (
	KindHeaderToken = "io.l5d.header.token"
	KindHeaderPath  = "io.l5d.header.path"
)

// DefaultIdentifier returns an h2 router's identifier when its config
// lists none: io.l5d.header.token on :authority.
func DefaultIdentifier(env proxy.IdentifierEnv) proxy.Identifier {
	id, _ := (&HeaderTokenConfig{Header: ":authority"}).NewIdentifier(env)
	return id
}

// HeaderTokenConfig is io.l5d.header.token for h2: the whole value of one
// header (default the :authority pseudo-header) is one path segment. A
// repeated header's last value wins.
type HeaderTokenConfig struct {
	Header string `yaml:"header"`
}

// Validate implements config.Validator.
func (c *HeaderTokenConfig) Validate() error { return validateHeaderName(c.Header) }

// NewIdentifier implements proxy.IdentifierConfig.
func (c *HeaderTokenConfig) NewIdentifier(env proxy.IdentifierEnv) (proxy.Identifier, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &headerToken{prefix: env.DstPrefix, get: headerGetter(c.Header), name: strings.ToLower(c.Header)}, nil
}

type headerToken struct {
	prefix dtab.Path
	get    func(*http.Request) string
	name   string
}

func (id *headerToken) Identify(r *http.Request) (dtab.Path, error) {
	v := id.get(r)
	if v == "" {
		return nil, proxy.Unidentified("%s header is absent", id.name)
	}
	return appendElems(id.prefix, v), nil
}

// HeaderPathConfig is io.l5d.header.path: the header's value (default the
// :path pseudo-header, without its query) is a path appended to the
// prefix, limited to its first Segments segments when set. gRPC's
// /pkg.Service/Method routes by service with segments: 1.
type HeaderPathConfig struct {
	Header   string `yaml:"header"`
	Segments int    `yaml:"segments"`
}

// Validate implements config.Validator.
func (c *HeaderPathConfig) Validate() error {
	if c.Segments < 0 {
		return config.FieldError("segments", "must not be negative, got %d", c.Segments)
	}
	return validateHeaderName(c.Header)
}

// NewIdentifier implements proxy.IdentifierConfig.
func (c *HeaderPathConfig) NewIdentifier(env proxy.IdentifierEnv) (proxy.Identifier, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &headerPath{prefix: env.DstPrefix, get: headerGetter(c.Header), name: strings.ToLower(c.Header), n: c.Segments}, nil
}

type headerPath struct {
	prefix dtab.Path
	get    func(*http.Request) string
	name   string
	n      int
}

func (id *headerPath) Identify(r *http.Request) (dtab.Path, error) {
	v := id.get(r)
	if v == "" {
		return nil, proxy.Unidentified("%s header is absent", id.name)
	}
	if !strings.HasPrefix(v, "/") {
		return nil, proxy.Unidentified("%s header %q is not a path", id.name, v)
	}
	var segs []string
	for s := range strings.SplitSeq(v, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	if id.n > 0 {
		if len(segs) < id.n {
			return nil, proxy.Unidentified("%s header %q has fewer than %d segments", id.name, v, id.n)
		}
		segs = segs[:id.n]
	}
	if len(segs) == 0 {
		return nil, proxy.Unidentified("%s header %q names no path segment", id.name, v)
	}
	return appendElems(id.prefix, segs...), nil
}

// validateHeaderName accepts a header name or one of the request
// pseudo-headers.
func validateHeaderName(h string) error {
	if h == "" {
		return config.FieldError("header", "must not be empty")
	}
	if strings.HasPrefix(h, ":") {
		switch strings.ToLower(h) {
		case ":authority", ":path", ":method", ":scheme":
			return nil
		}
		return config.FieldError("header", "unknown pseudo-header %q (known: :authority, :path, :method, :scheme)", h)
	}
	return nil
}

// headerGetter returns the reader of header h. net/http moves the
// pseudo-headers (and Host, their HTTP/1.1 form) out of the header map,
// so they are read from the request fields.
func headerGetter(h string) func(*http.Request) string {
	switch strings.ToLower(h) {
	case ":authority", "host":
		return func(r *http.Request) string { return r.Host }
	case ":path":
		return func(r *http.Request) string { return r.URL.Path }
	case ":method":
		return func(r *http.Request) string { return r.Method }
	case ":scheme":
		return func(r *http.Request) string {
			if r.TLS != nil {
				return "https"
			}
			return "http"
		}
	}
	key := http.CanonicalHeaderKey(h)
	return func(r *http.Request) string {
		if vs := r.Header[key]; len(vs) > 0 {
			return vs[len(vs)-1]
		}
		return ""
	}
}

// appendElems returns prefix followed by elems, in a new slice.
func appendElems(prefix dtab.Path, elems ...string) dtab.Path {
	p := make(dtab.Path, 0, len(prefix)+len(elems))
	return append(append(p, prefix...), elems...)
}

var (
	_ IdentifierConfig = (*HeaderTokenConfig)(nil)
	_ IdentifierConfig = (*HeaderPathConfig)(nil)
)
