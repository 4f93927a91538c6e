// Package transformers holds the generic interpreter transformers of
// spec/config.md §4.7 that need no service discovery of their own:
// io.l5d.port (send every bound name to one port, e.g. the incoming
// router on each host), io.l5d.localhost and io.l5d.specificHost (keep
// only this host's, or one given host's, addresses), io.l5d.replace
// (replace every bound name by one path, negative results staying
// negative) and io.l5d.const (always one path). A transformer prefixes
// each bound id with its marker (/%/io.l5d.port/4141/#/io.l5d.fs/world),
// so transformed names get their own clients and metrics.
package transformers

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func init() {
	config.Register[naming.TransformerConfig]("io.l5d.port", func() naming.TransformerConfig { return new(PortConfig) })
	config.Register[naming.TransformerConfig]("io.l5d.localhost", func() naming.TransformerConfig { return new(LocalhostConfig) })
	config.Register[naming.TransformerConfig]("io.l5d.specificHost", func() naming.TransformerConfig { return new(SpecificHostConfig) })
	config.Register[naming.TransformerConfig]("io.l5d.replace", func() naming.TransformerConfig { return new(ReplaceConfig) })
	config.Register[naming.TransformerConfig]("io.l5d.const", func() naming.TransformerConfig { return new(ConstConfig) })
}

// PortConfig is io.l5d.port.
type PortConfig struct {
	// Port replaces the port of every address (required).
	Port int `yaml:"port" config:"required"`
}

// Validate implements config.Validator.
func (c *PortConfig) Validate() error {
	if c.Port < 1 || c.Port > 65535 {
		return config.FieldError("port", "must be 1-65535, got %d", c.Port)
	}
	return nil
}

// NewTransformer implements naming.TransformerConfig.
func (c *PortConfig) NewTransformer(naming.Env) (naming.Transformer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	port := c.Port
	return &mapper{
		marker: dtab.Path{"%", "io.l5d.port", strconv.Itoa(port)},
		f: func(as []naming.Address) []naming.Address {
			out := make([]naming.Address, 0, len(as))
			seen := map[string]bool{}
			for _, a := range as {
				a.Port = port
				if k := a.HostPort(); !seen[k] {
					seen[k] = true
					out = append(out, a)
				}
			}
			return out
		},
	}, nil
}

// LocalhostConfig is io.l5d.localhost.
type LocalhostConfig struct{}

// NewTransformer implements naming.TransformerConfig.
func (c *LocalhostConfig) NewTransformer(naming.Env) (naming.Transformer, error) {
	local, err := localIPs()
	if err != nil {
		return nil, fmt.Errorf("io.l5d.localhost: listing this host's addresses: %w", err)
	}
	return &mapper{
		marker: dtab.Path{"%", "io.l5d.localhost"},
		f: func(as []naming.Address) []naming.Address {
			var out []naming.Address
			for _, a := range as {
				if ip, err := netip.ParseAddr(a.Host); err == nil && slices.Contains(local, ip.Unmap()) {
					out = append(out, a)
				}
			}
			return out
		},
	}, nil
}

// localIPs returns the addresses of this host's interfaces (loopback
// included).
func localIPs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, nil
}

// mapper is a transformer that rewrites address sets with f and marks ids.
type mapper struct {
	marker dtab.Path
	f      func([]naming.Address) []naming.Address
}

// Transform implements naming.Transformer.
func (m *mapper) Transform(t naming.BoundTree) naming.BoundTree {
	return dtab.Map(t, func(b *naming.Bound) *naming.Bound {
		if b == nil || b.Addr == nil {
			return b
		}
		return &naming.Bound{
			ID:       m.marker.Concat(b.ID),
			Residual: b.Residual,
			Addr:     mappedAddr{src: b.Addr, f: m.f},
		}
	})
}

// mappedAddr is a watch.Value[naming.Addr] derived from src: bound sets go
// through f, other states pass unchanged.
type mappedAddr struct {
	src watch.Value[naming.Addr]
	f   func([]naming.Address) []naming.Address
}

func (m mappedAddr) apply(a naming.Addr) naming.Addr {
	if a.State == naming.AddrBound {
		a.Addrs = m.f(a.Addrs)
	}
	return a
}

// Get implements watch.Value.
func (m mappedAddr) Get() naming.Addr { return m.apply(m.src.Get()) }

// Subscribe implements watch.Value.
func (m mappedAddr) Subscribe(f func(naming.Addr)) func() {
	return m.src.Subscribe(func(a naming.Addr) { f(m.apply(a)) })
}

var (
	_ naming.TransformerConfig = (*PortConfig)(nil)
	_ naming.TransformerConfig = (*LocalhostConfig)(nil)
	_ watch.Value[naming.Addr] = mappedAddr{}
)
