package routerd

import (
	"errors"
	"regexp"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/proxy/h2"
)

// Router is one entry of `routers:`, selected by its `protocol` key. The
// implementations are *HTTPRouter, *H2Router, *ThriftRouter and
// *ThriftMuxRouter; mux is refused as not supported by this version.
type Router interface {
	// Common returns the keys every protocol has.
	Common() *RouterCommon
	// ServerList returns the common part of each server.
	ServerList() []*ServerCommon
}

// Router protocols and their default server ports (spec/config.md §2).
const (
	ProtocolHTTP = "http"
	ProtocolH2   = "h2"

	DefaultHTTPPort = 4140
	DefaultH2Port   = 4142
)

func init() {
	config.SetKindKey[Router]("protocol")
	config.Register[Router](ProtocolHTTP, func() Router { return new(HTTPRouter) })
	config.Register[Router](ProtocolH2, func() Router { return new(H2Router) })
	config.RegisterUnsupported[Router]("mux")
}

// RouterCommon holds the router keys of every protocol (§4.1).
type RouterCommon struct {
	// Label names the router in metrics (rt/<label>/...) and admin pages.
	// Default: the protocol name.
	Label string `yaml:"label"`
	// Dtab is the router's base dtab.
	Dtab DtabText `yaml:"dtab"`
	// DstPrefix is the prefix identifiers put before logical names.
	DstPrefix PathText `yaml:"dstPrefix"`
	// Interpreter binds names; default {kind: default}.
	Interpreter      config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
	BindingTimeoutMs int                                     `yaml:"bindingTimeoutMs"`
	BindingCache     BindingCache                            `yaml:"bindingCache"`
	// Originator only adds the gauge rt/<label>/originator = 1.
	Originator   bool `yaml:"originator"`
	Experimental bool `yaml:"experimental"`
	// Announcers register the servers' `announce` names (announce.go).
	Announcers []config.Kinded[naming.AnnouncerConfig] `yaml:"announcers"`
}

// Common implements Router.
func (c *RouterCommon) Common() *RouterCommon { return c }

// SetDefaults implements config.Defaulter.
func (c *RouterCommon) SetDefaults() {
	c.DstPrefix = PathText{Text: "/svc", Path: dtab.Path{"svc"}}
	c.BindingTimeoutMs = 10000
	c.Interpreter = config.Kinded[naming.InterpreterConfig]{Kind: "default", Value: new(naming.DefaultInterpreterConfig)}
}

func (c *RouterCommon) validate(protocol string) error {
	if c.Label == "" {
		c.Label = protocol
	}
	if strings.ContainsAny(c.Label, "/ \t\n") {
		return config.FieldError("label", "label %q must not contain '/' or spaces (it is a metrics path segment)", c.Label)
	}
	if c.BindingTimeoutMs <= 0 {
		return config.FieldError("bindingTimeoutMs", "must be positive, got %d", c.BindingTimeoutMs)
	}
	if experimentalInterpreters[c.Interpreter.Kind] && !isExperimental(c.Interpreter.Value) {
		return config.FieldError("interpreter", "interpreter %s is experimental and requires `experimental: true`", c.Interpreter.Kind)
	}
	return nil
}

// BindingCache is `bindingCache` (§4.1): cache sizes and the idle TTL of
// clients.
type BindingCache struct {
	Paths       int `yaml:"paths"`
	Trees       int `yaml:"trees"`
	Bounds      int `yaml:"bounds"`
	Clients     int `yaml:"clients"`
	IdleTTLSecs int `yaml:"idleTtlSecs"`
}

// SetDefaults implements config.Defaulter.
func (b *BindingCache) SetDefaults() {
	b.Paths, b.Trees, b.Bounds, b.Clients, b.IdleTTLSecs = 1000, 1000, 1000, 1000, 600
}

// Validate implements config.Validator.
func (b *BindingCache) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"paths", b.Paths}, {"trees", b.Trees}, {"bounds", b.Bounds}, {"clients", b.Clients}, {"idleTtlSecs", b.IdleTTLSecs}} {
		if f.v <= 0 {
			return config.FieldError(f.name, "must be positive, got %d", f.v)
		}
	}
	return nil
}

// AccessLog is the access-log keys of http and h2 routers; the key names
// carry the protocol prefix (httpAccessLog, h2AccessLog).
type AccessLog struct {
	Path        string
	RollPolicy  string
	Append      bool
	RotateCount int
}

var rollPolicyRE = regexp.MustCompile(`^(never|hourly|daily|weekly\([0-6]\)|[0-9]+\.?[0-9]*\s*(b|kb|mb|gb|kilobytes?|megabytes?|gigabytes?|bytes?)?)$`)

func (a *AccessLog) validate(prefix string) error {
	if a.RollPolicy != "" && !rollPolicyRE.MatchString(strings.ToLower(a.RollPolicy)) {
		return config.FieldError(prefix+"AccessLogRollPolicy", "%q is not a roll policy (never, hourly, daily, weekly(n) or a size such as 100.megabytes)", a.RollPolicy)
	}
	if a.RotateCount < -1 {
		return config.FieldError(prefix+"AccessLogRotateCount", "must be -1 (unlimited) or more, got %d", a.RotateCount)
	}
	return nil
}

// TracePropagator is `tracePropagator`: io.l5d.default (l5d-ctx-trace) or
// io.l5d.zipkin (B3 headers).
type TracePropagator struct {
	Kind string `yaml:"kind"`
}

// SetDefaults implements config.Defaulter.
func (t *TracePropagator) SetDefaults() { t.Kind = "io.l5d.default" }

// Validate implements config.Validator.
func (t *TracePropagator) Validate() error {
	if t.Kind != "io.l5d.default" && t.Kind != "io.l5d.zipkin" {
		return config.FieldError("kind", "unknown kind %q (known: io.l5d.default, io.l5d.zipkin)", t.Kind)
	}
	return nil
}

// HTTPRouter is a `protocol: http` router (§4.2).
type HTTPRouter struct {
	RouterCommon `yaml:",inline"`
	// Identifier is the identifier list, tried in order. Empty means the
	// default, io.l5d.header.token on Host.
	Identifier config.List[config.Kinded[proxy.IdentifierConfig]] `yaml:"identifier"`
	Servers    []HTTPServer                                       `yaml:"servers" config:"required"`
	Client     Policy[HTTPClientParams]                           `yaml:"client"`
	Service    Policy[HTTPServiceParams]                          `yaml:"service"`

	HTTPAccessLog            string `yaml:"httpAccessLog"`
	HTTPAccessLogRollPolicy  string `yaml:"httpAccessLogRollPolicy"`
	HTTPAccessLogAppend      bool   `yaml:"httpAccessLogAppend"`
	HTTPAccessLogRotateCount int    `yaml:"httpAccessLogRotateCount"`

	MaxHeadersKB               int             `yaml:"maxHeadersKB"`
	MaxInitialLineKB           int             `yaml:"maxInitialLineKB"`
	MaxErrResponseKB           int             `yaml:"maxErrResponseKB"`
	StreamingEnabled           bool            `yaml:"streamingEnabled"`
	StreamAfterContentLengthKB *int            `yaml:"streamAfterContentLengthKB"`
	CompressionLevel           int             `yaml:"compressionLevel"`
	TracePropagator            TracePropagator `yaml:"tracePropagator"`
}

// SetDefaults implements config.Defaulter.
func (r *HTTPRouter) SetDefaults() {
	r.HTTPAccessLogAppend, r.HTTPAccessLogRotateCount = true, -1
	r.MaxHeadersKB, r.MaxInitialLineKB, r.MaxErrResponseKB = 8, 4, 5120
	r.StreamingEnabled, r.CompressionLevel = true, -1
}

// AccessLog returns the access-log settings (Path empty: no access log).
func (r *HTTPRouter) AccessLog() AccessLog {
	return AccessLog{r.HTTPAccessLog, r.HTTPAccessLogRollPolicy, r.HTTPAccessLogAppend, r.HTTPAccessLogRotateCount}
}

// StreamAfterKB returns streamAfterContentLengthKB with its default (5).
func (r *HTTPRouter) StreamAfterKB() int {
	if r.StreamAfterContentLengthKB == nil {
		return 5
	}
	return *r.StreamAfterContentLengthKB
}

// ServerList implements Router.
func (r *HTTPRouter) ServerList() []*ServerCommon {
	out := make([]*ServerCommon, len(r.Servers))
	for i := range r.Servers {
		out[i] = &r.Servers[i].ServerCommon
	}
	return out
}

// Validate implements config.Validator.
func (r *HTTPRouter) Validate() error {
	if err := r.RouterCommon.validate(ProtocolHTTP); err != nil {
		return err
	}
	if len(r.Servers) == 0 {
		return config.FieldError("servers", "at least one server is required")
	}
	al := r.AccessLog()
	if err := al.validate("http"); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"maxHeadersKB", r.MaxHeadersKB}, {"maxInitialLineKB", r.MaxInitialLineKB}, {"maxErrResponseKB", r.MaxErrResponseKB}} {
		if f.v <= 0 {
			return config.FieldError(f.name, "must be positive, got %d", f.v)
		}
	}
	if !r.StreamingEnabled && r.StreamAfterContentLengthKB != nil {
		return config.FieldError("streamAfterContentLengthKB", "cannot be set when streamingEnabled is false")
	}
	if r.StreamAfterContentLengthKB != nil && *r.StreamAfterContentLengthKB < 0 {
		return config.FieldError("streamAfterContentLengthKB", "must not be negative, got %d", *r.StreamAfterContentLengthKB)
	}
	if r.CompressionLevel < -1 || r.CompressionLevel > 9 {
		return config.FieldError("compressionLevel", "must be -1 (automatic) or 0-9, got %d", r.CompressionLevel)
	}
	return nil
}

// H2Router is a `protocol: h2` router (§4.3), for HTTP/2 and gRPC.
type H2Router struct {
	RouterCommon `yaml:",inline"`
	// Identifier is the identifier list, tried in order. Empty means the
	// default, io.l5d.header.token on :authority (h2.DefaultIdentifier).
	// h2 identifiers have their own extension point: the same kinds have
	// other defaults than on http routers.
	Identifier config.List[config.Kinded[h2.IdentifierConfig]] `yaml:"identifier"`
	Servers    []H2Server                                      `yaml:"servers" config:"required"`
	Client     Policy[H2ClientParams]                          `yaml:"client"`
	Service    Policy[H2ServiceParams]                         `yaml:"service"`

	H2AccessLog            string          `yaml:"h2AccessLog"`
	H2AccessLogRollPolicy  string          `yaml:"h2AccessLogRollPolicy"`
	H2AccessLogAppend      bool            `yaml:"h2AccessLogAppend"`
	H2AccessLogRotateCount int             `yaml:"h2AccessLogRotateCount"`
	TracePropagator        TracePropagator `yaml:"tracePropagator"`
}

// SetDefaults implements config.Defaulter.
func (r *H2Router) SetDefaults() { r.H2AccessLogAppend, r.H2AccessLogRotateCount = true, -1 }

// AccessLog returns the access-log settings (Path empty: no access log).
func (r *H2Router) AccessLog() AccessLog {
	return AccessLog{r.H2AccessLog, r.H2AccessLogRollPolicy, r.H2AccessLogAppend, r.H2AccessLogRotateCount}
}

// ServerList implements Router.
func (r *H2Router) ServerList() []*ServerCommon {
	out := make([]*ServerCommon, len(r.Servers))
	for i := range r.Servers {
		out[i] = &r.Servers[i].ServerCommon
	}
	return out
}

// Validate implements config.Validator.
func (r *H2Router) Validate() error {
	if err := r.RouterCommon.validate(ProtocolH2); err != nil {
		return err
	}
	if len(r.Servers) == 0 {
		return config.FieldError("servers", "at least one server is required")
	}
	al := r.AccessLog()
	return al.validate("h2")
}

// DtabText is a dtab written as text in the config, checked with
// dtab.Parse when loaded. Text keeps the original (comments included).
type DtabText struct {
	Text string
	Dtab dtab.Dtab
}

// UnmarshalConfig implements config.Unmarshaler.
func (d *DtabText) UnmarshalConfig(r config.Raw) error {
	if r.IsZero() {
		*d = DtabText{}
		return nil
	}
	s, ok := r.Scalar()
	if !ok {
		return r.Errorf("expected dtab text (a string such as \"/svc => /#/io.l5d.fs\")")
	}
	parsed, err := dtab.Parse(s)
	if err != nil {
		var pe *dtab.ParseError
		if !errors.As(err, &pe) || pe.Offset > len(s) || !strings.Contains(strings.TrimRight(s, "\n"), "\n") {
			return r.Errorf("invalid dtab: %v", err)
		}
		// A multi-line dtab is a block scalar whose text starts on the line
		// after the key: point at the offending line and show only it.
		start := strings.LastIndexByte(s[:pe.Offset], '\n') + 1
		end := strings.IndexByte(s[pe.Offset:], '\n')
		if end < 0 {
			end = len(s)
		} else {
			end += pe.Offset
		}
		found := "end of input"
		if pe.Found != "" {
			found = "'" + pe.Found + "'"
		}
		mark := pe.Found
		if pe.Offset+len(pe.Found) > end {
			mark = ""
		}
		context := strings.TrimSpace(s[start:pe.Offset] + "[" + mark + "]" + s[pe.Offset+len(mark):end])
		e := r.Errorf("invalid dtab: %s expected but %s found at '%s'", pe.Expected, found, context)
		e.Line += 1 + strings.Count(s[:pe.Offset], "\n")
		return e
	}
	*d = DtabText{Text: s, Dtab: parsed}
	return nil
}

// PathText is a path written as text in the config (e.g. `dstPrefix`),
// checked with dtab.ParsePath when loaded.
type PathText struct {
	Text string
	Path dtab.Path
}

// UnmarshalConfig implements config.Unmarshaler.
func (p *PathText) UnmarshalConfig(r config.Raw) error {
	s, ok := r.Scalar()
	if !ok {
		return r.Errorf("expected a path such as /svc")
	}
	path, err := dtab.ParsePath(s)
	if err != nil {
		return r.Errorf("invalid path %q: %v", s, err)
	}
	*p = PathText{Text: s, Path: path}
	return nil
}

// RegexString is a regular expression in the config, compiled when
// loaded (Go RE2 syntax, which covers what Linkerd configs use).
type RegexString struct {
	Text string
	Re   *regexp.Regexp
}

// UnmarshalConfig implements config.Unmarshaler.
func (x *RegexString) UnmarshalConfig(r config.Raw) error {
	s, ok := r.Scalar()
	if !ok {
		return r.Errorf("expected a regular expression string")
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return r.Errorf("invalid regular expression %q: %v", s, err)
	}
	*x = RegexString{Text: s, Re: re}
	return nil
}

// Linkerd 1.x kinds that this version does not implement (yet): choosing
// one is refused with a "not supported by this version" message. A Register
// of the same kind by its implementation takes precedence.
func init() {
	config.RegisterUnsupported[naming.InterpreterConfig]("io.l5d.mesh", "io.l5d.namerd.http", "io.l5d.fs", "io.l5d.k8s.configMap", "io.l5d.consul.interpreter", "io.l5d.k8s.istio")
	config.RegisterUnsupported[naming.NamerConfig]("io.l5d.k8s", "io.l5d.k8s.ns", "io.l5d.k8s.external", "io.l5d.consul", "io.l5d.serversets", "io.l5d.zkLeader", "io.l5d.rancher", "io.l5d.k8s.istio")
	config.RegisterUnsupported[naming.TransformerConfig]("io.l5d.k8s.daemonset", "io.l5d.k8s.localnode", "io.l5d.localhost", "io.l5d.port")
	config.RegisterUnsupported[proxy.IdentifierConfig]("io.l5d.methodAndHost", "io.l5d.path", "io.l5d.header", "io.l5d.static", "io.l5d.ingress", "io.l5d.header.path", "io.l5d.k8s.istio", "io.l5d.k8s.istio-ingress")
	config.RegisterUnsupported[h2.IdentifierConfig]("io.l5d.header.token", "io.l5d.header.path", "io.l5d.ingress", "io.l5d.k8s.istio")
}

// Keys that exist only on routers (and their servers, clients and
// services) of one protocol, so that using them on another protocol gets a
// precise message.
var (
	httpOnlyKeys = []string{"httpAccessLog", "httpAccessLogRollPolicy", "httpAccessLogAppend", "httpAccessLogRotateCount",
		"maxHeadersKB", "maxInitialLineKB", "maxErrResponseKB", "streamingEnabled", "streamAfterContentLengthKB", "compressionLevel"}
	h2OnlyKeys = []string{"h2AccessLog", "h2AccessLogRollPolicy", "h2AccessLogAppend", "h2AccessLogRotateCount"}
	thriftKeys = []string{"thriftMethodInDst", "thriftProtocol"}
)

func otherProtocolHint(key, protocol string) string {
	switch {
	case key == "baseDtab":
		// Older Linkerd docs and examples (thrift ones among them) still
		// use the 0.x name.
		return "`baseDtab` is Linkerd 0.x's name for `dtab`: rename the key"
	case contains(httpOnlyKeys, key):
		return "`" + key + "` applies to protocol http routers, not " + protocol
	case contains(h2OnlyKeys, key):
		return "`" + key + "` applies to protocol h2 routers, not " + protocol
	case contains(thriftKeys, key):
		return "`" + key + "` applies to protocol thrift routers, not " + protocol
	}
	return ""
}

// UnknownKeyHint implements config.KeyHinter.
func (r *HTTPRouter) UnknownKeyHint(key string) string { return otherProtocolHint(key, ProtocolHTTP) }

// UnknownKeyHint implements config.KeyHinter.
func (r *H2Router) UnknownKeyHint(key string) string { return otherProtocolHint(key, ProtocolH2) }
