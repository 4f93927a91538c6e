package routerd

import (
	"fmt"
	"net"
	"reflect"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Config is a linkerd.yaml (spec/config.md §3). Load it with LoadConfig.
type Config struct {
	Admin AdminConfig `yaml:"admin"`
	// Routers are the routers, each selected by its `protocol`: the Value
	// is a *HTTPRouter, a *H2Router or a *ThriftRouter.
	Routers   []config.Kinded[Router]                    `yaml:"routers"`
	Namers    []config.Kinded[naming.NamerConfig]        `yaml:"namers"`
	Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	Usage     UsageConfig                                `yaml:"usage"`
}

// LoadConfig parses and validates a linkerd.yaml (or its JSON form). The
// error lists every problem found, each with its place and line; see
// config.AsErrors.
func LoadConfig(text []byte) (*Config, error) {
	c := new(Config)
	if err := config.Load(text, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Defaults returns the configuration Linkerd uses for the parts a file
// leaves out: admin on 127.0.0.1:9990, usage enabled (but never sent),
// and no routers, namers or telemeters.
func Defaults() *Config {
	c := new(Config)
	config.ApplyDefaults(c)
	return c
}

// Validate implements config.Validator: the cross-field rules of
// spec/config.md §1 and the experimental gates.
func (c *Config) Validate() error {
	var errs config.Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, &config.Error{Path: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(c.Routers) == 0 {
		add("routers", "at least one router is required")
	}
	labels := map[string]int{}
	var binds []bind
	if c.Admin.Port != 0 {
		binds = append(binds, bind{ip: c.Admin.IP, port: c.Admin.Port, where: "admin"})
	}
	for i, r := range c.Routers {
		rc := r.Value.Common()
		if j, dup := labels[rc.Label]; dup {
			add(fmt.Sprintf("routers[%d].label", i), "label %q is already used by routers[%d]; give each router a unique label (it defaults to the protocol name)", rc.Label, j)
		} else {
			labels[rc.Label] = i
		}
		for j, s := range r.Value.ServerList() {
			b := bind{ip: s.IP, port: s.Port, where: fmt.Sprintf("routers[%d].servers[%d]", i, j)}
			if prev := b.conflict(binds); prev != nil {
				add(b.where+".port", "%s conflicts with %s, which binds %s", b, prev.where, prev)
				continue
			}
			binds = append(binds, b)
		}
		errs = append(errs, announceErrors(i, r.Value)...)
	}
	prefixes := map[string]int{}
	for i, n := range c.Namers {
		pfx := NamerPrefix(n)
		if j, dup := prefixes[pfx]; dup {
			add(fmt.Sprintf("namers[%d].prefix", i), "prefix %s is already used by namers[%d]", pfx, j)
		} else {
			prefixes[pfx] = i
		}
		if experimentalNamers[n.Kind] && !isExperimental(n.Value) {
			add(fmt.Sprintf("namers[%d]", i), "namer %s is experimental and requires `experimental: true`", n.Kind)
		}
	}
	for i, t := range c.Telemetry {
		if experimentalTelemeters[t.Kind] && !isExperimental(t.Value) {
			add(fmt.Sprintf("telemetry[%d]", i), "telemeter %s is experimental and requires `experimental: true`", t.Kind)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// bind is one listener address, for conflict detection.
type bind struct {
	ip    string
	port  int
	where string
}

func (b bind) String() string { return net.JoinHostPort(b.ip, fmt.Sprint(b.port)) }

// conflict returns the first of bs that b cannot bind next to: the same
// port on the same address, or on the unspecified address (0.0.0.0, ::)
// of either side. Port 0 (ephemeral) never conflicts.
func (b bind) conflict(bs []bind) *bind {
	if b.port == 0 {
		return nil
	}
	ip := net.ParseIP(b.ip)
	for i := range bs {
		o := &bs[i]
		if o.port != b.port {
			continue
		}
		oip := net.ParseIP(o.ip)
		if ip == nil || oip == nil || ip.Equal(oip) || ip.IsUnspecified() || oip.IsUnspecified() {
			return o
		}
	}
	return nil
}

// NamerPrefix returns where a namer is mounted below /#/ (see
// naming.NamerPrefix).
func NamerPrefix(n config.Kinded[naming.NamerConfig]) string { return naming.NamerPrefix(n) }

// isExperimental reads the `experimental` key of a plug-in config: the
// Experimental field every Common block (naming.NamerCommon,
// telemetry.TelemeterCommon...) carries.
func isExperimental(v any) bool {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return false
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return false
	}
	f := rv.FieldByName("Experimental")
	return f.IsValid() && f.Kind() == reflect.Bool && f.Bool()
}

// Kinds that Linkerd 1.7 refuses to start without `experimental: true`
// (spec/config.md §1). Gates on kinds this version does not implement are
// moot (they are refused anyway) but listed for when they land.
var (
	experimentalNamers       = map[string]bool{"io.l5d.k8s.external": true, "io.l5d.dnssrv": true, "io.l5d.curator": true, "io.l5d.rancher": true, "io.l5d.k8s.istio": true}
	experimentalInterpreters = map[string]bool{"io.l5d.namerd.http": true, "io.l5d.k8s.configMap": true, "io.l5d.k8s.istio": true}
	experimentalTelemeters   = map[string]bool{"io.l5d.statsd": true}
)

// AdminConfig is the `admin:` block (§3.1).
type AdminConfig struct {
	IP              string         `yaml:"ip"`
	Port            int            `yaml:"port"`
	TLS             *ServerTLS     `yaml:"tls"`
	Security        *AdminSecurity `yaml:"security"`
	ShutdownGraceMs int            `yaml:"shutdownGraceMs"`
	// WorkerThreads is a JVM setting, accepted and ignored.
	WorkerThreads      int `yaml:"workerThreads"`
	HTTPIdentifierPort int `yaml:"httpIdentifierPort" config:"unsupported"`
	SocketOptions      any `yaml:"socketOptions" config:"unsupported"`

	ipSet bool
}

type adminShadow AdminConfig

// UnmarshalConfig implements config.Unmarshaler, to remember whether `ip`
// was given (see IPDefaulted).
func (a *AdminConfig) UnmarshalConfig(r config.Raw) error {
	if err := r.Decode((*adminShadow)(a)); err != nil {
		return err
	}
	_, a.ipSet = r.Get("ip")
	return nil
}

// IPDefaulted reports whether the admin address fell back to the loopback
// default. Linkerd before 1.2 bound 0.0.0.0 there, and configs written for
// it (the seed walkthrough) expose the admin port through a Service, so
// the runtime should warn (spec/config.md §2).
func (a *AdminConfig) IPDefaulted() bool { return !a.ipSet }

// Admin defaults (spec/config.md §2).
const (
	DefaultAdminIP   = "127.0.0.1"
	DefaultAdminPort = 9990
)

// SetDefaults implements config.Defaulter.
func (a *AdminConfig) SetDefaults() {
	a.IP, a.Port, a.ShutdownGraceMs = DefaultAdminIP, DefaultAdminPort, 10000
}

// Validate implements config.Validator.
func (a *AdminConfig) Validate() error {
	if err := validateIP(a.IP); err != nil {
		return config.FieldError("ip", "%v", err)
	}
	if err := validatePort(a.Port); err != nil {
		return config.FieldError("port", "%v", err)
	}
	if a.ShutdownGraceMs < 0 {
		return config.FieldError("shutdownGraceMs", "must not be negative, got %d", a.ShutdownGraceMs)
	}
	return nil
}

// Addr returns the admin listen address "ip:port".
func (a *AdminConfig) Addr() string { return net.JoinHostPort(a.IP, fmt.Sprint(a.Port)) }

// AdminSecurity is `admin.security` (§3.1): categories of admin pages that
// may be turned off, and path regex white/black lists.
type AdminSecurity struct {
	UIEnabled          bool          `yaml:"uiEnabled"`
	ControlEnabled     bool          `yaml:"controlEnabled"`
	DiagnosticsEnabled bool          `yaml:"diagnosticsEnabled"`
	PathWhitelist      []RegexString `yaml:"pathWhitelist"`
	PathBlacklist      []RegexString `yaml:"pathBlacklist"`
}

// SetDefaults implements config.Defaulter: everything allowed.
func (s *AdminSecurity) SetDefaults() {
	s.UIEnabled, s.ControlEnabled, s.DiagnosticsEnabled = true, true, true
}

// UsageConfig is `usage:` (§3.2). It is parsed for compatibility; Linnet
// never reports usage anywhere.
type UsageConfig struct {
	OrgID   string `yaml:"orgId"`
	Enabled bool   `yaml:"enabled"`
}

// SetDefaults implements config.Defaulter.
func (u *UsageConfig) SetDefaults() { u.Enabled = true }

func validateIP(ip string) error {
	if net.ParseIP(ip) == nil {
		return fmt.Errorf("%q is not an IP address (Linkerd takes literal addresses such as 0.0.0.0 or 127.0.0.1)", ip)
	}
	return nil
}

func validatePort(p int) error {
	if p < 0 || p > 65535 {
		return fmt.Errorf("port %d out of range 0-65535", p)
	}
	return nil
}

func init() {
	config.RegisterUnsupported[telemetry.TelemeterConfig]("io.l5d.prometheus", "io.l5d.recentRequests", "io.l5d.zipkin", "io.l5d.tracelog", "io.l5d.influxdb")
}
