package transformers

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// resolveTimeout bounds the one look-up of a specificHost host name at
// startup.
const resolveTimeout = 10 * time.Second

// SpecificHostConfig is io.l5d.specificHost: keep only the addresses of
// one host, e.g. the node a daemonset router runs on.
//
//	transformers:
//	- kind: io.l5d.specificHost
//	  host: 10.1.2.3
//
// A host name is resolved once, when the transformer is built; a name that
// does not resolve then is a startup error. Every address it resolves to
// is kept (Linkerd 1 kept the first one Java returned, which for a name
// with an IPv4 and an IPv6 address depends on the JVM's preferences).
// Transformed ids get the marker /%/io.l5d.specificHost, as in Linkerd
// (the host is not part of it).
type SpecificHostConfig struct {
	// Host is an IP address or a host name (required).
	Host string `yaml:"host" config:"required"`

	// lookup resolves host names; net.DefaultResolver when nil (tests
	// inject one).
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Validate implements config.Validator.
func (c *SpecificHostConfig) Validate() error {
	h := c.Host
	switch {
	case strings.TrimSpace(h) == "":
		return config.FieldError("host", "must not be empty")
	case strings.ContainsAny(h, " \t\r\n/"):
		return config.FieldError("host", "must be an IP address or a host name, got %q", h)
	}
	return nil
}

// NewTransformer implements naming.TransformerConfig.
func (c *SpecificHostConfig) NewTransformer(env naming.Env) (naming.Transformer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("io.l5d.specificHost: %w", err)
	}
	ips, err := c.resolve(env.Ctx)
	if err != nil {
		return nil, err
	}
	return &mapper{
		marker: dtab.Path{"%", "io.l5d.specificHost"},
		f: func(as []naming.Address) []naming.Address {
			var out []naming.Address
			for _, a := range as {
				if ip, err := netip.ParseAddr(a.Host); err == nil && slices.Contains(ips, ip.Unmap().WithZone("")) {
					out = append(out, a)
				}
			}
			return out
		},
	}, nil
}

// resolve returns the host's addresses: the literal itself, or what the
// name resolves to now.
func (c *SpecificHostConfig) resolve(ctx context.Context) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(c.Host); err == nil {
		return []netip.Addr{ip.Unmap().WithZone("")}, nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	lookup := c.lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	found, err := lookup(ctx, c.Host)
	if err == nil && len(found) == 0 {
		err = fmt.Errorf("no addresses")
	}
	if err != nil {
		return nil, fmt.Errorf("io.l5d.specificHost: host %q does not resolve: %w", c.Host, err)
	}
	ips := make([]netip.Addr, 0, len(found))
	for _, ip := range found {
		if ip = ip.Unmap().WithZone(""); !slices.Contains(ips, ip) {
			ips = append(ips, ip)
		}
	}
	return ips, nil
}

var _ naming.TransformerConfig = (*SpecificHostConfig)(nil)
