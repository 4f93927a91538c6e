package consul

import (
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/linnet-mesh/linnet/internal/config"
	consulclient "github.com/linnet-mesh/linnet/internal/consul"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// Kind is the namer kind.
const Kind = "io.l5d.consul"

func init() {
	config.Register[naming.NamerConfig](Kind, func() naming.NamerConfig { return new(Config) })
}

// Consistency modes of Consul reads (consistencyMode).
const (
	ModeDefault    = "default"
	ModeStale      = "stale"
	ModeConsistent = "consistent"
)

// Config is the io.l5d.consul namer block (Linkerd 1.x keys):
//
//	namers:
//	- kind: io.l5d.consul
//	  host: 127.0.0.1
//	  port: 8500
//	  includeTag: false
//	  useHealthCheck: true
//	  healthStatuses: [passing, warning]
//	  token: ...
//	  consistencyMode: stale
//	  preferServiceAddress: true
//	  weights: [{tag: canary, weight: 0.1}]
type Config struct {
	naming.NamerCommon `yaml:",inline"`
	Host               string `yaml:"host"`
	Port               int    `yaml:"port"`
	// IncludeTag makes paths /<dc>/<tag>/<service>: only instances with
	// the tag.
	IncludeTag bool `yaml:"includeTag"`
	// UseHealthCheck keeps only instances whose health (the worst of their
	// checks) is one of HealthStatuses.
	UseHealthCheck bool     `yaml:"useHealthCheck"`
	HealthStatuses []string `yaml:"healthStatuses"`
	// Token is the ACL token sent with every request.
	Token string `yaml:"token"`
	// SetHost makes requests to the service's instances carry the Host
	// [<tag>.]<service>.service.<dc>.<domain> (the domain is the agent's).
	SetHost         bool   `yaml:"setHost"`
	ConsistencyMode string `yaml:"consistencyMode"`
	// FailFast makes a name that has no answer yet fail with Consul's
	// error while Consul cannot be reached, instead of staying pending.
	FailFast bool `yaml:"failFast"`
	// PreferServiceAddress uses the service's address when it has one,
	// else the node's; false always uses the node's.
	PreferServiceAddress bool `yaml:"preferServiceAddress"`
	// Weights scale the traffic share of instances carrying a tag; an
	// instance with several weighted tags gets the largest weight, and a
	// tag listed twice takes its last weight (as Linkerd's map does).
	Weights []TagWeight `yaml:"weights"`
	// FixedLengthStreamedAfterKB is a Finagle HTTP client knob; Go's client
	// streams every response, so it is accepted and checked only.
	FixedLengthStreamedAfterKB int `yaml:"fixedLengthStreamedAfterKB"`
	// TLS secures the connection to Consul.
	TLS *ClientTLS `yaml:"tls"`
	// TransferMetadata copies each instance's service Meta and node Meta
	// into its address metadata ("service_meta", "node_meta").
	TransferMetadata bool `yaml:"transferMetadata"`
}

// TagWeight is one `weights` entry.
type TagWeight struct {
	Tag    string  `yaml:"tag" config:"required"`
	Weight float64 `yaml:"weight" config:"required"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.Host, c.Port = "localhost", 8500
	c.HealthStatuses = []string{api.HealthPassing}
	c.ConsistencyMode = ModeDefault
	c.PreferServiceAddress = true
	c.FixedLengthStreamedAfterKB = 5120
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	switch {
	case c.Host == "":
		return config.FieldError("host", "must not be empty")
	case c.Port < 1 || c.Port > 65535:
		return config.FieldError("port", "%d is not a TCP port from 1 to 65535", c.Port)
	case c.FixedLengthStreamedAfterKB < 0:
		return config.FieldError("fixedLengthStreamedAfterKB", "%d must not be negative", c.FixedLengthStreamedAfterKB)
	}
	if err := checkMode(c.ConsistencyMode); err != nil {
		return config.FieldError("consistencyMode", "%v", err)
	}
	if len(c.HealthStatuses) == 0 {
		return config.FieldError("healthStatuses", "must list at least one status (passing, warning, critical, maintenance)")
	}
	for i, s := range c.HealthStatuses {
		switch s {
		case api.HealthPassing, api.HealthWarning, api.HealthCritical, api.HealthMaint:
		default:
			return config.FieldError(fmt.Sprintf("healthStatuses[%d]", i), "%q is not a Consul health status (passing, warning, critical, maintenance)", s)
		}
	}
	for i, w := range c.Weights {
		if w.Tag == "" {
			return config.FieldError(fmt.Sprintf("weights[%d].tag", i), "must not be empty")
		}
		if !(w.Weight >= 0) || w.Weight > 1e9 {
			return config.FieldError(fmt.Sprintf("weights[%d].weight", i), "%v is not a weight from 0 to 1e9", w.Weight)
		}
	}
	if _, err := mountPrefix(c.Prefix); err != nil {
		return config.FieldError("prefix", "%v", err)
	}
	return nil
}

func checkMode(m string) error {
	switch m {
	case ModeDefault, ModeStale, ModeConsistent:
		return nil
	}
	return fmt.Errorf("%q is not a consistency mode (default, stale, consistent)", m)
}

// NewNamer implements naming.NamerConfig.
func (c *Config) NewNamer(env naming.Env) (naming.Namer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	tc, err := c.TLS.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: tls: %w", Kind, err)
	}
	cli, tr, err := consulclient.NewClient(c.Host, c.Port, c.Token, tc, 16)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	p, _ := mountPrefix(c.Prefix)
	weights := map[string]float64{}
	for _, w := range c.Weights {
		weights[w.Tag] = w.Weight
	}
	o := Options{
		Prefix:               p,
		IncludeTag:           c.IncludeTag,
		PreferServiceAddress: c.PreferServiceAddress,
		Weights:              weights,
		TransferMetadata:     c.TransferMetadata,
		SetHost:              c.SetHost,
		ConsistencyMode:      c.ConsistencyMode,
		FailFast:             c.FailFast,
		OnClose:              tr.CloseIdleConnections,
	}
	if c.UseHealthCheck {
		o.HealthStatuses = c.HealthStatuses
	}
	return New(env, cli, o), nil
}

// ClientTLS is the `tls` block (Linkerd's client TLS keys).
type ClientTLS = tlsconf.ClientConfig

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
