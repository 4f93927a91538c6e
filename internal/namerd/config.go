package namerd

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/namerd/thrift"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Config is namerd.yaml (spec/config.md §8).
type Config struct {
	Admin      AdminConfig                                `yaml:"admin"`
	Storage    config.Kinded[storage.Config]              `yaml:"storage" config:"required"`
	Namers     []config.Kinded[naming.NamerConfig]        `yaml:"namers"`
	Interfaces []config.Kinded[InterfaceConfig]           `yaml:"interfaces" config:"required"`
	Telemetry  []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
}

// Validate implements config.Validator: at least one interface, no two
// listeners on one address, no two namers on one prefix.
func (c *Config) Validate() error {
	if len(c.Interfaces) == 0 {
		return config.FieldError("interfaces", "at least one interface is required (e.g. kind: io.l5d.httpController)")
	}
	seen := map[string]string{c.Admin.Addr(): "admin"}
	for i, ifc := range c.Interfaces {
		a := ifc.Value.Common().Addr()
		where := fmt.Sprintf("interfaces[%d]", i)
		if prev, dup := seen[a]; dup && !strings.HasSuffix(a, ":0") {
			return config.FieldError(where+".port", "%s is already used by %s", a, prev)
		}
		seen[a] = where
	}
	prefixes := map[string]int{}
	for i, n := range c.Namers {
		p := NamerPrefix(n)
		if j, dup := prefixes[p]; dup {
			return config.FieldError(fmt.Sprintf("namers[%d].prefix", i), "prefix /#/%s is already used by namers[%d]", p, j)
		}
		prefixes[p] = i
	}
	return nil
}

// NamerPrefix returns where a namer is mounted below /#/ (see
// naming.NamerPrefix).
func NamerPrefix(n config.Kinded[naming.NamerConfig]) string { return naming.NamerPrefix(n) }

// AdminConfig is namerd's `admin:` block (default 127.0.0.1:9991).
type AdminConfig struct {
	IP   string `yaml:"ip"`
	Port int    `yaml:"port"`
	// ShutdownGraceMs bounds the drain after POST /admin/shutdown or a signal.
	ShutdownGraceMs int `yaml:"shutdownGraceMs"`
	// WorkerThreads is a JVM setting, accepted and ignored.
	WorkerThreads int        `yaml:"workerThreads"`
	TLS           *ServerTLS `yaml:"tls"`
	Security      any        `yaml:"security" config:"unsupported"`
	SocketOptions any        `yaml:"socketOptions" config:"unsupported"`
}

// Defaults of namerd's listeners.
const (
	DefaultAdminPort      = 9991
	DefaultControllerPort = 4180
)

// SetDefaults implements config.Defaulter.
func (a *AdminConfig) SetDefaults() {
	a.IP, a.Port, a.ShutdownGraceMs = "127.0.0.1", DefaultAdminPort, 10000
}

// Validate implements config.Validator.
func (a *AdminConfig) Validate() error {
	if err := checkListen(a.IP, a.Port); err != nil {
		return err
	}
	if a.ShutdownGraceMs < 0 {
		return config.FieldError("shutdownGraceMs", "must not be negative, got %d", a.ShutdownGraceMs)
	}
	return nil
}

// Addr returns "ip:port".
func (a *AdminConfig) Addr() string { return net.JoinHostPort(a.IP, strconv.Itoa(a.Port)) }

func checkListen(ip string, port int) error {
	if net.ParseIP(ip) == nil {
		return config.FieldError("ip", "%q is not an IP address (use a literal address such as 0.0.0.0 or 127.0.0.1)", ip)
	}
	if port < 0 || port > 65535 {
		return config.FieldError("port", "%d is not a TCP port (0-65535)", port)
	}
	return nil
}

// InterfaceConfig is one entry of `interfaces:`, registered with
// config.Register[namerd.InterfaceConfig].
type InterfaceConfig interface {
	Common() *InterfaceCommon
}

// InterfaceCommon holds the keys every interface accepts.
type InterfaceCommon struct {
	IP            string     `yaml:"ip"`
	Port          int        `yaml:"port"`
	TLS           *ServerTLS `yaml:"tls"`
	SocketOptions any        `yaml:"socketOptions" config:"unsupported"`
}

// Common implements InterfaceConfig.
func (c *InterfaceCommon) Common() *InterfaceCommon { return c }

// Addr returns "ip:port".
func (c *InterfaceCommon) Addr() string { return net.JoinHostPort(c.IP, strconv.Itoa(c.Port)) }

// Validate implements config.Validator.
func (c *InterfaceCommon) Validate() error { return checkListen(c.IP, c.Port) }

// HTTPControllerConfig is io.l5d.httpController.
type HTTPControllerConfig struct {
	InterfaceCommon `yaml:",inline"`
}

// SetDefaults implements config.Defaulter.
func (c *HTTPControllerConfig) SetDefaults() {
	c.IP, c.Port = "127.0.0.1", DefaultControllerPort
}

// ThriftInterfaceConfig is io.l5d.thriftNameInterpreter: the ThriftMux
// Namer service Linkerd's io.l5d.namerd interpreter uses.
type ThriftInterfaceConfig struct {
	InterfaceCommon        `yaml:",inline"`
	thrift.InterfaceConfig `yaml:",inline"`
}

// SetDefaults implements config.Defaulter.
func (c *ThriftInterfaceConfig) SetDefaults() {
	c.IP, c.Port = "127.0.0.1", thrift.DefaultPort
	c.InterfaceConfig.SetDefaults()
}

// Validate implements config.Validator.
func (c *ThriftInterfaceConfig) Validate() error {
	if err := c.InterfaceCommon.Validate(); err != nil {
		return err
	}
	return c.InterfaceConfig.Validate()
}

// HTTPControllerKind is the kind of the HTTP control API.
const HTTPControllerKind = "io.l5d.httpController"

func init() {
	config.Register[InterfaceConfig](HTTPControllerKind, func() InterfaceConfig { return new(HTTPControllerConfig) })
	config.Register[InterfaceConfig](thrift.InterfaceKind, func() InterfaceConfig { return new(ThriftInterfaceConfig) })
	config.RegisterUnsupported[InterfaceConfig]("io.l5d.mesh", "io.l5d.destination")
	config.RegisterUnsupported[storage.Config]("io.l5d.k8s", "io.l5d.zk", "io.l5d.consul")
}
