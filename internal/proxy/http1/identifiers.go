package http1

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

// The HTTP/1.1 identifiers of spec/config.md §4.4.
func init() {
	config.Register[proxy.IdentifierConfig]("io.l5d.header.token", func() proxy.IdentifierConfig { return &HeaderTokenConfig{Header: "Host"} })
	config.Register[proxy.IdentifierConfig]("io.l5d.methodAndHost", func() proxy.IdentifierConfig { return &MethodAndHostConfig{} })
	config.Register[proxy.IdentifierConfig]("io.l5d.path", func() proxy.IdentifierConfig { return &PathConfig{Segments: 1} })
	config.Register[proxy.IdentifierConfig]("io.l5d.header", func() proxy.IdentifierConfig { return &HeaderConfig{Header: "l5d-name"} })
	config.Register[proxy.IdentifierConfig]("io.l5d.static", func() proxy.IdentifierConfig { return &StaticConfig{} })
}

// HeaderTokenConfig is io.l5d.header.token: the whole value of one header
// is one path segment (Host: www.hello.world → /svc/www.hello.world).
type HeaderTokenConfig struct {
	// Header to read (default Host).
	Header string `yaml:"header"`
}

// NewIdentifier implements proxy.IdentifierConfig.
func (c *HeaderTokenConfig) NewIdentifier(env proxy.IdentifierEnv) (proxy.Identifier, error) {
	return &headerToken{prefix: env.DstPrefix, header: http.CanonicalHeaderKey(c.Header)}, nil
}

type headerToken struct {
	prefix dtab.Path
	header string
	// recent remembers the names of recent values (a direct-mapped
	// cache), so that the common case, few hosts and many requests,
	// builds no path per request. Entries are immutable.
	recent [16]atomic.Pointer[identified]
}

type identified struct {
	value string
	path  dtab.Path // full capacity: an append copies
}

// slot picks value's cache entry from its length and last bytes.
func slot(v string) int {
	h := len(v)
	if len(v) > 0 {
		h = h*31 + int(v[len(v)-1])
	}
	if len(v) > 1 {
		h = h*31 + int(v[len(v)-2])
	}
	return h & 15
}

func (id *headerToken) Identify(r *http.Request) (dtab.Path, error) {
	var v string
	if id.header == "Host" {
		v = r.Host // net/http moves Host out of the header map
	} else if vs := r.Header[id.header]; len(vs) > 0 {
		v = vs[len(vs)-1]
	}
	return id.identify(v)
}

// identifyHost names a request after its Host (the express lane, which
// has no *http.Request).
func (id *headerToken) identifyHost(v string) (dtab.Path, error) { return id.identify(v) }

func (id *headerToken) identify(v string) (dtab.Path, error) {
	if v == "" {
		return nil, proxy.Unidentified("%s header is absent", id.header)
	}
	e := &id.recent[slot(v)]
	if c := e.Load(); c != nil && c.value == v {
		return c.path, nil
	}
	// A copy: v slices the request's head, which the cache must not keep.
	v = strings.Clone(v)
	p := appendElems(id.prefix, v)
	p = p[:len(p):len(p)]
	e.Store(&identified{value: v, path: p})
	return p, nil
}

// MethodAndHostConfig is io.l5d.methodAndHost:
// /svc/1.1/<METHOD>/<host>[/<uri path>].
type MethodAndHostConfig struct {
	// HTTPURIInDst appends the request path's segments.
	HTTPURIInDst bool `yaml:"httpUriInDst"`
}

// NewIdentifier implements proxy.IdentifierConfig.
func (c *MethodAndHostConfig) NewIdentifier(env proxy.IdentifierEnv) (proxy.Identifier, error) {
	return &methodAndHost{prefix: env.DstPrefix, uri: c.HTTPURIInDst}, nil
}

type methodAndHost struct {
	prefix dtab.Path
	uri    bool
}

func (id *methodAndHost) Identify(r *http.Request) (dtab.Path, error) {
	version := strconv.Itoa(r.ProtoMajor) + "." + strconv.Itoa(r.ProtoMinor)
	p := appendElems(id.prefix, version, r.Method)
	if version == "1.1" {
		if r.Host == "" {
			return nil, proxy.Unidentified("Host header is absent")
		}
		p = append(p, strings.ToLower(r.Host))
	}
	if id.uri {
		p = append(p, segments(r.URL.Path)...)
	}
	return p, nil
}

// PathConfig is io.l5d.path: /svc/<first N path segments>.
type PathConfig struct {
	// Segments is how many leading path segments name the service (default 1).
	Segments int `yaml:"segments"`
	// Consume strips those segments from the forwarded request.
	Consume bool `yaml:"consume"`
}

// Validate implements config.Validator.
func (c *PathConfig) Validate() error {
	if c.Segments < 1 {
		return config.FieldError("segments", "must be at least 1, not %d", c.Segments)
	}
	return nil
}

// NewIdentifier implements proxy.IdentifierConfig.
func (c *PathConfig) NewIdentifier(env proxy.IdentifierEnv) (proxy.Identifier, error) {
	return &pathIdentifier{prefix: env.DstPrefix, n: c.Segments, consume: c.Consume}, nil
}

type pathIdentifier struct {
	prefix  dtab.Path
	n       int
	consume bool
}

func (id *pathIdentifier) Identify(r *http.Request) (dtab.Path, error) {
	segs := segments(r.URL.Path)
	if len(segs) < id.n {
		return nil, proxy.Unidentified("not enough segments in path")
	}
	p := appendElems(id.prefix, segs[:id.n]...)
	if id.consume {
		rest := "/" + strings.Join(segs[id.n:], "/")
		if len(segs) > id.n && strings.HasSuffix(r.URL.Path, "/") {
			rest += "/"
		}
		r.URL.Path, r.URL.RawPath = rest, ""
	}
	return p, nil
}

// HeaderConfig is io.l5d.header: the header's value is a path appended to
// the prefix (l5d-name: /foo/bar → /svc/foo/bar).
type HeaderConfig struct {
	// Header to read (default l5d-name).
	Header string `yaml:"header"`
}

// NewIdentifier implements proxy.IdentifierConfig.
func (c *HeaderConfig) NewIdentifier(env proxy.IdentifierEnv) (proxy.Identifier, error) {
	return &headerPath{prefix: env.DstPrefix, header: http.CanonicalHeaderKey(c.Header)}, nil
}

type headerPath struct {
	prefix dtab.Path
	header string
}

func (id *headerPath) Identify(r *http.Request) (dtab.Path, error) {
	v := r.Header.Get(id.header)
	if id.header == "Host" {
		v = r.Host
	}
	if v == "" {
		return nil, proxy.Unidentified("%s header is absent", id.header)
	}
	p, err := dtab.ParsePath(v)
	if err != nil {
		return nil, proxy.Unidentified("%s header is not a path: %v", id.header, err)
	}
	return appendElems(id.prefix, p...), nil
}

// StaticConfig is io.l5d.static: every request gets the same name.
type StaticConfig struct {
	// Path is appended to dstPrefix (required).
	Path string `yaml:"path" config:"required"`
	path dtab.Path
}

// Validate implements config.Validator.
func (c *StaticConfig) Validate() error {
	p, err := dtab.ParsePath(c.Path)
	if err != nil {
		return config.FieldError("path", "%v", err)
	}
	c.path = p
	return nil
}

// NewIdentifier implements proxy.IdentifierConfig.
func (c *StaticConfig) NewIdentifier(env proxy.IdentifierEnv) (proxy.Identifier, error) {
	if c.path == nil {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	return staticIdentifier(appendElems(env.DstPrefix, c.path...)), nil
}

type staticIdentifier dtab.Path

func (id staticIdentifier) Identify(*http.Request) (dtab.Path, error) { return dtab.Path(id), nil }

// appendElems returns prefix followed by elems, in a new slice.
func appendElems(prefix dtab.Path, elems ...string) dtab.Path {
	p := make(dtab.Path, 0, len(prefix)+len(elems)+4)
	return append(append(p, prefix...), elems...)
}

// segments splits a URL path into its non-empty segments.
func segments(path string) []string {
	var out []string
	for s := range strings.SplitSeq(path, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

var (
	_ proxy.IdentifierConfig = (*HeaderTokenConfig)(nil)
	_ proxy.IdentifierConfig = (*MethodAndHostConfig)(nil)
	_ proxy.IdentifierConfig = (*PathConfig)(nil)
	_ proxy.IdentifierConfig = (*HeaderConfig)(nil)
	_ proxy.IdentifierConfig = (*StaticConfig)(nil)
)
