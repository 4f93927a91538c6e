package dnssrv

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// Kind is the namer kind.
const Kind = "io.l5d.dnssrv"

// DefaultRefreshIntervalSeconds is how often a watched name is re-resolved
// when refreshIntervalSeconds is not set (Linkerd's default).
const DefaultRefreshIntervalSeconds = 5

func init() {
	config.Register[naming.NamerConfig](Kind, func() naming.NamerConfig { return new(Config) })
}

// Config is the io.l5d.dnssrv namer block:
//
//	namers:
//	- kind: io.l5d.dnssrv
//	  experimental: true            # Linkerd 1.x refuses the kind without it
//	  refreshIntervalSeconds: 5
//	  dnsHosts: [127.0.0.1:5353]    # default: the system resolver
type Config struct {
	naming.NamerCommon `yaml:",inline"`
	// RefreshIntervalSeconds is the polling interval of a watched name.
	RefreshIntervalSeconds int `yaml:"refreshIntervalSeconds"`
	// DNSHosts are the DNS servers to ask, in order: "host" (port 53),
	// "host:port" or "[v6]:port". Empty: the system resolver.
	DNSHosts []string `yaml:"dnsHosts"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() { c.RefreshIntervalSeconds = DefaultRefreshIntervalSeconds }

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.RefreshIntervalSeconds < 1 || c.RefreshIntervalSeconds > 86400 {
		return config.FieldError("refreshIntervalSeconds", "%d is not a number of seconds from 1 to 86400", c.RefreshIntervalSeconds)
	}
	for i, h := range c.DNSHosts {
		if _, err := ServerAddr(h); err != nil {
			return config.FieldError(fmt.Sprintf("dnsHosts[%d]", i), "%v", err)
		}
	}
	if _, err := mountPrefix(c.Prefix); err != nil {
		return config.FieldError("prefix", "%v", err)
	}
	return nil
}

// NewNamer implements naming.NamerConfig.
func (c *Config) NewNamer(env naming.Env) (naming.Namer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	p, _ := mountPrefix(c.Prefix)
	servers := make([]string, len(c.DNSHosts))
	for i, h := range c.DNSHosts {
		servers[i], _ = ServerAddr(h)
	}
	opts := []Option{WithPrefix(p), WithInterval(time.Duration(c.RefreshIntervalSeconds) * time.Second)}
	if len(servers) > 0 {
		opts = append(opts, WithResolver(NewServerResolver(servers...)))
	}
	return New(env, opts...), nil
}

// ServerAddr turns a dnsHosts entry into a dialable "host:port": an IP
// literal or host name, with an optional port (default 53).
func ServerAddr(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("empty DNS server address")
	}
	host, port := s, "53"
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	port = strconv.Itoa(n) // "0053" → "53"
	if _, err := netip.ParseAddr(host); err != nil && !validHostName(host) {
		return "", fmt.Errorf("%q is not an IP address or host name, with an optional :port", s)
	}
	addr := net.JoinHostPort(host, port)
	if h, _, err := net.SplitHostPort(addr); err != nil || h != host { // an IPv6 zone such as "%]"
		return "", fmt.Errorf("%q is not an IP address or host name, with an optional :port", s)
	}
	return addr, nil
}

func validHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// mountPrefix returns /#/<prefix>, the prefix defaulting to the kind.
func mountPrefix(prefix string) (dtab.Path, error) {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		prefix = Kind
	}
	p, err := dtab.ParsePath("/" + prefix)
	if err != nil {
		return nil, err
	}
	return dtab.Path{"#"}.Concat(p), nil
}
