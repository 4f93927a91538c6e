package routerd

import (
	"fmt"
	"net"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// DefaultServerIP is where servers listen unless `ip` says otherwise.
const DefaultServerIP = "127.0.0.1"

// ServerCommon holds the server keys of every protocol (§6.1).
type ServerCommon struct {
	IP   string     `yaml:"ip"`
	Port int        `yaml:"port"`
	TLS  *ServerTLS `yaml:"tls"`
	// ClearContext strips inbound l5d-ctx-* / l5d-dtab headers and
	// linkerd details from error responses (edge servers).
	ClearContext bool `yaml:"clearContext"`
	// MaxConcurrentRequests rejects requests beyond this many in flight;
	// 0 means unlimited.
	MaxConcurrentRequests int          `yaml:"maxConcurrentRequests"`
	TimeoutMs             int          `yaml:"timeoutMs"`
	ServerSession         *SessionConf `yaml:"serverSession"`
	Label                 string       `yaml:"label"`
	Announce              []PathText   `yaml:"announce"`
	SocketOptions         any          `yaml:"socketOptions" config:"unsupported"`
}

// SetDefaults implements config.Defaulter.
func (s *ServerCommon) SetDefaults() { s.IP = DefaultServerIP }

// Validate implements config.Validator.
func (s *ServerCommon) Validate() error {
	if err := validateIP(s.IP); err != nil {
		return config.FieldError("ip", "%v", err)
	}
	if err := validatePort(s.Port); err != nil {
		return config.FieldError("port", "%v", err)
	}
	if s.MaxConcurrentRequests < 0 {
		return config.FieldError("maxConcurrentRequests", "must not be negative, got %d", s.MaxConcurrentRequests)
	}
	if s.TimeoutMs < 0 {
		return config.FieldError("timeoutMs", "must not be negative, got %d", s.TimeoutMs)
	}
	return nil
}

// Addr returns the listen address "ip:port".
func (s *ServerCommon) Addr() string { return net.JoinHostPort(s.IP, fmt.Sprint(s.Port)) }

// SessionConf is serverSession / clientSession.
type SessionConf struct {
	IdleTimeMs int `yaml:"idleTimeMs"`
	LifeTimeMs int `yaml:"lifeTimeMs"`
}

// Validate implements config.Validator.
func (s *SessionConf) Validate() error {
	if s.IdleTimeMs < 0 {
		return config.FieldError("idleTimeMs", "must not be negative, got %d", s.IdleTimeMs)
	}
	if s.LifeTimeMs < 0 {
		return config.FieldError("lifeTimeMs", "must not be negative, got %d", s.LifeTimeMs)
	}
	return nil
}

// HTTPServer is a server of an http router.
type HTTPServer struct {
	ServerCommon       `yaml:",inline"`
	AddForwardedHeader *ForwardedHeader `yaml:"addForwardedHeader"`
	TimestampHeader    string           `yaml:"timestampHeader"`
	MaxCallDepth       int              `yaml:"maxCallDepth"`
}

// SetDefaults implements config.Defaulter.
func (s *HTTPServer) SetDefaults() { s.Port, s.MaxCallDepth = DefaultHTTPPort, 1000 }

// Validate implements config.Validator.
func (s *HTTPServer) Validate() error {
	if err := s.ServerCommon.Validate(); err != nil {
		return err
	}
	if s.MaxCallDepth <= 0 {
		return config.FieldError("maxCallDepth", "must be positive, got %d", s.MaxCallDepth)
	}
	return validateTimestampHeader(s.TimestampHeader)
}

// H2Server is a server of an h2 router.
type H2Server struct {
	ServerCommon                      `yaml:",inline"`
	H2Settings                        `yaml:",inline"`
	WindowUpdateRatio                 float64          `yaml:"windowUpdateRatio"`
	MaxConcurrentStreamsPerConnection int              `yaml:"maxConcurrentStreamsPerConnection"`
	AddForwardedHeader                *ForwardedHeader `yaml:"addForwardedHeader"`
	MaxCallDepth                      int              `yaml:"maxCallDepth"`
}

// SetDefaults implements config.Defaulter.
func (s *H2Server) SetDefaults() {
	s.Port, s.MaxCallDepth = DefaultH2Port, 1000
	s.WindowUpdateRatio, s.MaxConcurrentStreamsPerConnection = 0.99, 1000
}

// Validate implements config.Validator.
func (s *H2Server) Validate() error {
	if err := s.ServerCommon.Validate(); err != nil {
		return err
	}
	if err := s.H2Settings.Validate(); err != nil {
		return err
	}
	if s.WindowUpdateRatio <= 0 || s.WindowUpdateRatio >= 1 {
		return config.FieldError("windowUpdateRatio", "must be between 0 and 1 (exclusive), got %g", s.WindowUpdateRatio)
	}
	if s.MaxConcurrentStreamsPerConnection <= 0 {
		return config.FieldError("maxConcurrentStreamsPerConnection", "must be positive, got %d", s.MaxConcurrentStreamsPerConnection)
	}
	if s.MaxCallDepth <= 0 {
		return config.FieldError("maxCallDepth", "must be positive, got %d", s.MaxCallDepth)
	}
	return nil
}

// H2Settings are the HTTP/2 window, frame and header-table keys shared by
// h2 servers and clients. Zero means the protocol default (64 KiB initial
// stream window, 16 KiB frames, 4 KiB header table, unlimited header list).
type H2Settings struct {
	HeaderTableBytes         int `yaml:"headerTableBytes"`
	InitialStreamWindowBytes int `yaml:"initialStreamWindowBytes"`
	MaxFrameBytes            int `yaml:"maxFrameBytes"`
	MaxHeaderListBytes       int `yaml:"maxHeaderListBytes"`
}

// Validate implements config.Validator.
func (h *H2Settings) Validate() error {
	if h.HeaderTableBytes < 0 {
		return config.FieldError("headerTableBytes", "must not be negative, got %d", h.HeaderTableBytes)
	}
	if w := h.InitialStreamWindowBytes; w != 0 && (w < 0 || w > 1<<31-1) {
		return config.FieldError("initialStreamWindowBytes", "must be between 1 and 2147483647, got %d", w)
	}
	if f := h.MaxFrameBytes; f != 0 && (f < 16384 || f > 16777215) {
		return config.FieldError("maxFrameBytes", "must be between 16384 and 16777215 (RFC 9113), got %d", f)
	}
	if h.MaxHeaderListBytes < 0 {
		return config.FieldError("maxHeaderListBytes", "must not be negative, got %d", h.MaxHeaderListBytes)
	}
	return nil
}

// ForwardedHeader is `addForwardedHeader` (RFC 7239): how to label the
// `by` and `for` parameters.
type ForwardedHeader struct {
	By  Labeler `yaml:"by"`
	For Labeler `yaml:"for"`
}

// SetDefaults implements config.Defaulter.
func (f *ForwardedHeader) SetDefaults() {
	f.By.Kind, f.For.Kind = "requestRandom", "requestRandom"
}

// Labeler is one Forwarded-header labeler.
type Labeler struct {
	Kind  string `yaml:"kind"`
	Label string `yaml:"label"`
}

var labelerKinds = []string{"ip", "ip:port", "connectionRandom", "requestRandom", "router", "static"}

// Validate implements config.Validator.
func (l *Labeler) Validate() error {
	if !contains(labelerKinds, l.Kind) {
		return config.FieldError("kind", "unknown labeler kind %q (known: %s)", l.Kind, joinList(labelerKinds))
	}
	if l.Kind == "static" && l.Label == "" {
		return config.FieldError("label", "a static labeler needs `label`")
	}
	if l.Kind == "static" {
		if err := validateObfuscatedLabel(l.Label); err != nil {
			return err
		}
	}
	if l.Kind != "static" && l.Label != "" {
		return config.FieldError("label", "`label` applies only to the static labeler")
	}
	return nil
}

// ServerTLS is a server's `tls` block (§6.3), the same block namerd's
// interfaces and the admin servers take.
type ServerTLS = tlsconf.ServerConfig

var tlsProtocols = []string{"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}

func validateTLSProtocols(ps []string) error {
	for i, p := range ps {
		if !contains(tlsProtocols, p) {
			return config.FieldError(fmt.Sprintf("protocols[%d]", i), "unknown TLS protocol %q (known: %s)", p, joinList(tlsProtocols))
		}
	}
	return nil
}

var h2ServerKeys = []string{"windowUpdateRatio", "headerTableBytes", "initialStreamWindowBytes", "maxConcurrentStreamsPerConnection", "maxFrameBytes", "maxHeaderListBytes"}

// UnknownKeyHint implements config.KeyHinter.
func (s *HTTPServer) UnknownKeyHint(key string) string {
	if contains(h2ServerKeys, key) {
		return "`" + key + "` applies to servers of protocol h2 routers, not http"
	}
	return ""
}

// UnknownKeyHint implements config.KeyHinter.
func (s *H2Server) UnknownKeyHint(key string) string {
	if key == "timestampHeader" {
		return "`" + key + "` applies to servers of protocol http routers, not h2"
	}
	return ""
}
