package statsd

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Kind is the telemeter kind this package registers.
const Kind = "io.l5d.statsd"

// Defaults, as in Linkerd 1's StatsDConfig.
const (
	DefaultPrefix          = "linkerd"
	DefaultHostname        = "127.0.0.1"
	DefaultPort            = 8125
	DefaultGaugeIntervalMs = 10000
	DefaultSampleRate      = 0.01
)

// resolveTimeout bounds the lookup of `hostname` at load time.
const resolveTimeout = 5 * time.Second

func init() {
	config.Register[telemetry.TelemeterConfig](Kind, func() telemetry.TelemeterConfig { return &Config{} })
}

// Config is the io.l5d.statsd telemeter (experimental in Linkerd 1, and
// refused without `experimental: true` as there):
//
//	telemetry:
//	- kind: io.l5d.statsd
//	  experimental: true
//	  prefix: linkerd
//	  hostname: 127.0.0.1
//	  port: 8125
//	  gaugeIntervalMs: 10000
//	  sampleRate: 0.01
type Config struct {
	telemetry.TelemeterCommon `yaml:",inline"`
	// Prefix starts every metric name, followed by a dot; empty for none.
	// Default "linkerd".
	Prefix string `yaml:"prefix"`
	// Hostname of the StatsD server (a name or a literal IP), resolved
	// once, when the config is loaded. Default 127.0.0.1.
	Hostname string `yaml:"hostname"`
	// Port of the StatsD server (UDP). Default 8125.
	Port int `yaml:"port"`
	// GaugeIntervalMs is how often gauges are sent. Default 10000.
	GaugeIntervalMs int `yaml:"gaugeIntervalMs"`
	// SampleRate is the fraction of counter increments and histogram
	// values sent, each line carrying `|@rate` so that the server scales
	// it back. Default 0.01.
	SampleRate float64 `yaml:"sampleRate"`

	// addr is the server's address, resolved by Validate.
	addr *net.UDPAddr
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.Prefix, c.Hostname, c.Port = DefaultPrefix, DefaultHostname, DefaultPort
	c.GaugeIntervalMs, c.SampleRate = DefaultGaugeIntervalMs, DefaultSampleRate
}

// Validate implements config.Validator. It resolves `hostname`, so a
// name that does not resolve is refused at load time rather than
// silently losing every metric.
func (c *Config) Validate() error {
	if !c.Experimental {
		// Linkerd 1 refuses to start with this telemeter unless it is
		// explicitly enabled; so do we (in linkerd and namerd configs).
		return config.FieldError("experimental", "the %s telemeter is experimental and must be explicitly enabled by setting `experimental: true`", Kind)
	}
	if i := strings.IndexFunc(c.Prefix, badPrefixRune); i >= 0 {
		r, _ := utf8.DecodeRuneInString(c.Prefix[i:])
		return config.FieldError("prefix", "%q contains %q, which StatsD lines cannot carry in a name (no ':', '|', '@', whitespace or control characters)", c.Prefix, r)
	}
	if c.Port < 1 || c.Port > 65535 {
		return config.FieldError("port", "must be between 1 and 65535, got %d", c.Port)
	}
	if c.GaugeIntervalMs <= 0 {
		return config.FieldError("gaugeIntervalMs", "must be positive, got %d", c.GaugeIntervalMs)
	}
	if !(c.SampleRate > 0 && c.SampleRate <= 1) {
		return config.FieldError("sampleRate", "must be greater than 0 and at most 1, got %v", c.SampleRate)
	}
	if c.Hostname == "" {
		return config.FieldError("hostname", "must not be empty (the StatsD server, e.g. 127.0.0.1)")
	}
	addr, err := resolve(c.Hostname, c.Port)
	if err != nil {
		return config.FieldError("hostname", "%v", err)
	}
	c.addr = addr
	return nil
}

// badPrefixRune reports runes that would break a StatsD line.
func badPrefixRune(r rune) bool {
	return r == ':' || r == '|' || r == '@' || unicode.IsSpace(r) || unicode.IsControl(r)
}

// resolve looks hostname up (bounded in time) and returns its first
// address, IPv4 first, as the UDP destination.
func resolve(hostname string, port int) (*net.UDPAddr, error) {
	if ip := net.ParseIP(hostname); ip != nil {
		return &net.UDPAddr{IP: ip, Port: port}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, hostname)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %q: %v", hostname, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("cannot resolve %q: no addresses", hostname)
	}
	pick := ips[0]
	for _, ip := range ips {
		if ip.IP.To4() != nil {
			pick = ip
			break
		}
	}
	return &net.UDPAddr{IP: pick.IP, Port: port, Zone: pick.Zone}, nil
}

// Addr returns the StatsD server address "host:port" as configured.
func (c *Config) Addr() string { return net.JoinHostPort(c.Hostname, strconv.Itoa(c.Port)) }

// NewTelemeter implements telemetry.TelemeterConfig: it opens the UDP
// socket and starts the exporter.
func (c *Config) NewTelemeter(env telemetry.TelemeterEnv) (telemetry.Telemeter, error) {
	if c.addr == nil { // a Config built in code, not loaded
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	return start(env, options{
		addr:       c.addr,
		prefix:     c.Prefix,
		sampleRate: c.SampleRate,
		gaugeEvery: time.Duration(c.GaugeIntervalMs) * time.Millisecond,
	})
}
