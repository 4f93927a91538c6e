package dnssrv

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// Resolver answers the two DNS questions the namer asks. Errors that mean
// "this name does not exist" (NXDOMAIN, or no records of the type) must
// satisfy IsNotFound; any other error is a failure to know.
type Resolver interface {
	// SRV returns the SRV records of name.
	SRV(ctx context.Context, name string) ([]*net.SRV, error)
	// IPs returns the IPv4 and IPv6 addresses of host.
	IPs(ctx context.Context, host string) ([]netip.Addr, error)
}

// IsNotFound reports whether err says that the name does not exist or has
// no records of the type asked for.
func IsNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// netResolver asks each of its resolvers in turn until one answers.
type netResolver struct {
	servers []string // for error messages; empty for the system resolver
	rs      []*net.Resolver
}

// SystemResolver is the host's resolver (resolv.conf, hosts file).
func SystemResolver() Resolver { return &netResolver{rs: []*net.Resolver{net.DefaultResolver}} }

// NewServerResolver asks the given DNS servers ("host:port"), in order:
// the first one that answers (the name exists or not) decides; a server
// that fails (unreachable, timeout, SERVFAIL) hands over to the next.
func NewServerResolver(servers ...string) Resolver {
	r := &netResolver{servers: servers}
	for _, s := range servers {
		var d net.Dialer
		r.rs = append(r.rs, &net.Resolver{
			PreferGo: true,
			// The Go resolver dials the servers of resolv.conf; every dial
			// goes to this server instead, over the network it asks for
			// (udp, or tcp for truncated answers).
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, s)
			},
		})
	}
	return r
}

func (r *netResolver) SRV(ctx context.Context, name string) ([]*net.SRV, error) {
	return try(r, func(x *net.Resolver) ([]*net.SRV, error) {
		_, srvs, err := x.LookupSRV(ctx, "", "", name)
		return srvs, err
	})
}

func (r *netResolver) IPs(ctx context.Context, host string) ([]netip.Addr, error) {
	return try(r, func(x *net.Resolver) ([]netip.Addr, error) { return x.LookupNetIP(ctx, "ip", host) })
}

func try[T any](r *netResolver, f func(*net.Resolver) (T, error)) (T, error) {
	var errs []error
	for i, x := range r.rs {
		v, err := f(x)
		if err == nil || IsNotFound(err) {
			return v, err
		}
		var de *net.DNSError
		if len(r.servers) > 0 && errors.As(err, &de) {
			// The Go resolver names the resolv.conf server it meant to
			// ask; name the one actually asked.
			c := *de
			c.Server = r.servers[i]
			err = &c
		}
		errs = append(errs, err)
	}
	var zero T
	return zero, errors.Join(errs...)
}
