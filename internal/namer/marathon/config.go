package marathon

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// Kind is the namer kind.
const Kind = "io.l5d.marathon"

// Linkerd's defaults.
const (
	DefaultHost  = "marathon.mesos"
	DefaultPort  = 80
	DefaultTTLMs = 5000
)

// The environment variables Linkerd reads its Marathon credentials from.
// When both are set, the DC/OS service account wins.
const (
	// EnvDCOSCredential holds a DC/OS service account as JSON:
	// {"login_endpoint": "...", "private_key": "<PEM>", "scheme": "RS256", "uid": "..."}.
	EnvDCOSCredential = "DCOS_SERVICE_ACCOUNT_CREDENTIAL"
	// EnvBasicCredential holds base64("user:password"), sent as
	// "Authorization: Basic <value>".
	EnvBasicCredential = "MARATHON_HTTP_AUTH_CREDENTIAL"
)

func init() {
	config.Register[naming.NamerConfig](Kind, func() naming.NamerConfig { return new(Config) })
}

// Config is the io.l5d.marathon namer block (Linkerd 1.x keys):
//
//	namers:
//	- kind: io.l5d.marathon
//	  host: marathon.mesos
//	  port: 80
//	  uriPrefix: /marathon      # DC/OS serves Marathon's API under /marathon
//	  ttlMs: 5000
//	  useHealthCheck: true
//	  tls:
//	    commonName: master.mesos
//	    trustCerts: [/etc/dcos-ca.crt]
//
// Credentials come from the environment (EnvDCOSCredential,
// EnvBasicCredential), as with Linkerd.
type Config struct {
	naming.NamerCommon `yaml:",inline"`
	// Host and Port are Marathon's (or DC/OS Admin Router's) address.
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// URIPrefix is prepended to Marathon's /v2 API paths.
	URIPrefix string `yaml:"uriPrefix"`
	// TTLMs is the polling interval of the app list and of each watched
	// app, in milliseconds.
	TTLMs int `yaml:"ttlMs"`
	// UseHealthCheck keeps only tasks whose Marathon health checks all
	// pass.
	UseHealthCheck bool `yaml:"useHealthCheck"`
	// TLS makes the namer talk HTTPS to Marathon (DC/OS strict mode).
	TLS *tlsconf.ClientConfig `yaml:"tls"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.Host, c.Port, c.TTLMs = DefaultHost, DefaultPort, DefaultTTLMs
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Host) == "":
		return config.FieldError("host", "must not be empty")
	case strings.ContainsAny(c.Host, "/?#@ ") || strings.Contains(strings.Trim(c.Host, "[]"), "]"):
		return config.FieldError("host", "%q is not a host name or IP address", c.Host)
	case c.Port < 1 || c.Port > 65535:
		return config.FieldError("port", "%d is not a TCP port from 1 to 65535", c.Port)
	case c.TTLMs < 1 || c.TTLMs > 86_400_000:
		return config.FieldError("ttlMs", "%d is not a number of milliseconds from 1 to 86400000", c.TTLMs)
	}
	if _, err := cleanURIPrefix(c.URIPrefix); err != nil {
		return config.FieldError("uriPrefix", "%v", err)
	}
	if _, err := mountPrefix(c.Prefix); err != nil {
		return config.FieldError("prefix", "%v", err)
	}
	return nil
}

// NewNamer implements naming.NamerConfig. It reads the credentials from
// the environment; a malformed DC/OS credential is an error here, as it
// is when Linkerd starts.
func (c *Config) NewNamer(env naming.Env) (naming.Namer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	o, err := c.options(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	n, err := New(env, o)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// options turns the block (and the credentials getenv finds) into
// Options.
func (c *Config) options(getenv func(string) string) (Options, error) {
	tc, err := c.TLS.TLSConfig()
	if err != nil {
		return Options{}, fmt.Errorf("tls: %w", err)
	}
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	uriPrefix, _ := cleanURIPrefix(c.URIPrefix)
	prefix, _ := mountPrefix(c.Prefix)
	host := strings.Trim(c.Host, "[]")
	hostHeader := host // Linkerd sends the host without the port
	if strings.Contains(host, ":") {
		hostHeader = "[" + host + "]"
	}
	o := Options{
		Prefix:         prefix,
		BaseURL:        scheme + "://" + net.JoinHostPort(host, fmt.Sprint(c.Port)) + uriPrefix,
		Host:           hostHeader,
		TLS:            tc,
		TTL:            time.Duration(c.TTLMs) * time.Millisecond,
		UseHealthCheck: c.UseHealthCheck,
	}
	if js := getenv(EnvDCOSCredential); js != "" {
		acct, err := ParseServiceAccount([]byte(js))
		if err != nil {
			return Options{}, fmt.Errorf("%s: %w", EnvDCOSCredential, err)
		}
		o.ServiceAccount = acct
	} else if b := strings.TrimSpace(getenv(EnvBasicCredential)); b != "" {
		o.BasicCredential = b
	}
	return o, nil
}

// cleanURIPrefix returns the prefix as "/a/b" ("" for none).
func cleanURIPrefix(p string) (string, error) {
	p = strings.Trim(strings.TrimSpace(p), "/")
	if p == "" {
		return "", nil
	}
	if strings.ContainsAny(p, "?# \t") || strings.Contains(p, "//") {
		return "", fmt.Errorf("%q is not a URI path such as /marathon", p)
	}
	return "/" + p, nil
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
