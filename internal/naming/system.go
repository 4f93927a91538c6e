package naming

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// HostResolver resolves a DNS name to IP addresses; net.DefaultResolver's
// LookupNetIP (with network "ip") is the default. An error for which
// IsNotFound reports true makes the address set negative.
type HostResolver func(ctx context.Context, host string) ([]netip.Addr, error)

func defaultHostResolver(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// DefaultDNSInterval is how often /$/inet re-resolves a DNS name while its
// address set is watched (Finagle's InetResolver polls every 5 s).
const DefaultDNSInterval = 5 * time.Second

// systemNamer answers paths under /$/ (spec/dtab.md §7.4). It is stateless
// apart from its resolver settings; answers never change over time (the
// address sets of /$/inet names do, through their Addr values).
type systemNamer struct {
	resolve  HostResolver
	interval time.Duration

	// dns shares one address watch per (host, port, fixed) among every
	// bound name that refers to it, for as long as any of them is alive.
	mu  sync.Mutex
	dns map[dnsKey]weak.Pointer[dnsAddr]
}

type dnsKey struct {
	host  string
	port  int
	fixed bool
}

// Lookup implements Namer; p is the whole path, including the leading "$".
func (s *systemNamer) Lookup(p dtab.Path) Lookup {
	t, err := s.lookup(p)
	if err != nil {
		return watch.Const[watch.Activity[dtab.Tree[Name]]]{V: watch.FailedActivity[dtab.Tree[Name]](err)}
	}
	return watch.Const[watch.Activity[dtab.Tree[Name]]]{V: watch.OkActivity(t)}
}

func (s *systemNamer) lookup(p dtab.Path) (dtab.Tree[Name], error) {
	if len(p) < 2 || p[0] != "$" {
		return dtab.NegTree[Name](), nil
	}
	switch class := p[1]; class {
	case "inet", "fixedinet":
		if len(p) >= 4 {
			if port, ok := parseJavaInt(p[3]); ok {
				return s.inetLeaf(p[:4], p[4:], p[2], port, class == "fixedinet"), nil
			}
		}
		if class == "inet" && len(p) >= 3 {
			if port, ok := parseJavaInt(p[2]); ok {
				return s.inetLeaf(p[:3], p[3:], "", port, false), nil
			}
		}
	case "fail":
		return dtab.FailTree[Name](), nil
	case "nil":
		return dtab.EmptyTree[Name](), nil
	}
	if f, ok := classNamers[p[1]]; ok {
		return f(s, p[2:]), nil
	}
	return dtab.Tree[Name]{}, &UnknownNamerError{Class: p[1], Path: p}
}

func (s *systemNamer) inetLeaf(id, residual dtab.Path, host string, port int64, fixed bool) dtab.Tree[Name] {
	return dtab.LeafTree(Name{Bound: &Bound{
		ID:       slices.Clip(id),
		Residual: residual,
		Addr:     s.inetAddr(host, port, fixed),
	}})
}

// inetAddr returns the address set of host:port: a constant for literal
// IPs (and the empty host, which means the local host), a DNS watch
// otherwise.
func (s *systemNamer) inetAddr(host string, port int64, fixed bool) watch.Value[Addr] {
	if port < 0 || port > 65535 {
		return watch.Const[Addr]{V: Addr{State: AddrFailed,
			Err: errors.New("port out of range:" + strconv.FormatInt(port, 10))}}
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if ip, ok := parseLiteralIP(host); ok {
		return watch.Const[Addr]{V: Addr{State: AddrBound,
			Addrs: []Address{{Host: ip.String(), Port: int(port), Weight: 1}}}}
	}
	return s.sharedDNS(dnsKey{host: host, port: int(port), fixed: fixed})
}

// sharedDNS returns the live watch of k, or a new one.
func (s *systemNamer) sharedDNS(k dnsKey) *dnsAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.dns[k].Value(); a != nil {
		return a
	}
	a := &dnsAddr{resolve: s.resolve, interval: s.interval, host: k.host, port: k.port,
		fixed: k.fixed, v: watch.NewVar(Addr{State: AddrPending})}
	if s.dns == nil {
		s.dns = map[dnsKey]weak.Pointer[dnsAddr]{}
	}
	wp := weak.Make(a)
	s.dns[k] = wp
	runtime.AddCleanup(a, func(k dnsKey) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.dns[k] == wp {
			delete(s.dns, k)
		}
	}, k)
	return a
}

// parseJavaInt parses s the way Java's Integer.parseInt does: an optional
// sign followed by ASCII digits, within the 32-bit range.
func parseJavaInt(s string) (int64, bool) {
	digits := s
	if len(digits) > 0 && (digits[0] == '+' || digits[0] == '-') {
		digits = digits[1:]
	}
	if digits == "" {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	return n, err == nil
}

// parseLiteralIP accepts IPv6 literals and IPv4 in the forms Java's
// InetAddress accepts without DNS: a.b.c.d, and the shorthands a.b.c
// (c is 16 bits), a.b (b is 24 bits) and a (32 bits), all decimal.
func parseLiteralIP(host string) (netip.Addr, bool) {
	if strings.Contains(host, ":") {
		ip, err := netip.ParseAddr(host)
		return ip, err == nil
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, p := range parts {
		if p == "" || len(p) > 10 {
			return netip.Addr{}, false
		}
		for j := 0; j < len(p); j++ {
			if p[j] < '0' || p[j] > '9' {
				return netip.Addr{}, false
			}
		}
		vals[i], _ = strconv.ParseUint(p, 10, 64)
	}
	last := len(parts) - 1
	var v uint64
	for i := 0; i < last; i++ {
		if vals[i] > 255 {
			return netip.Addr{}, false
		}
		v = v<<8 | vals[i]
	}
	rem := uint(4 - last) // bytes the last part fills
	if vals[last] >= 1<<(8*rem) {
		return netip.Addr{}, false
	}
	v = v<<(8*rem) | vals[last]
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// dnsAddr is the address set of a DNS name. It resolves only while it has
// subscribers: the first subscription starts a goroutine that resolves now
// and then every interval (once for fixedinet); the last cancel stops it and
// waits for it to exit.
type dnsAddr struct {
	resolve  HostResolver
	interval time.Duration
	host     string
	port     int
	fixed    bool
	v        *watch.Var[Addr]

	mu       sync.Mutex
	subs     int
	resolved bool // fixedinet: one answer is final
	stop     context.CancelFunc
	done     chan struct{}
}

// Get implements watch.Value: the last known set (pending until resolved
// while subscribed).
func (a *dnsAddr) Get() Addr { return a.v.Get() }

// Subscribe implements watch.Value.
func (a *dnsAddr) Subscribe(f func(Addr)) func() {
	a.mu.Lock()
	a.subs++
	if a.subs == 1 && a.stop == nil && !(a.fixed && a.resolved) {
		ctx, cancel := context.WithCancel(context.Background())
		a.stop, a.done = cancel, make(chan struct{})
		go a.poll(ctx, a.done)
	}
	a.mu.Unlock()
	cancelSub := a.v.Subscribe(f)
	var once sync.Once
	return func() {
		once.Do(func() {
			cancelSub()
			a.mu.Lock()
			a.subs--
			var stop context.CancelFunc
			var done chan struct{}
			if a.subs == 0 && a.stop != nil {
				stop, done = a.stop, a.done
				a.stop, a.done = nil, nil
			}
			a.mu.Unlock()
			if stop != nil {
				stop()
				<-done
			}
		})
	}
}

func (a *dnsAddr) poll(ctx context.Context, done chan struct{}) {
	defer close(done)
	var timer *time.Timer
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ips, err := a.resolve(rctx, a.host)
		cancel()
		if ctx.Err() != nil {
			return
		}
		a.publish(ips, err)
		if a.fixed && a.v.Get().State == AddrBound {
			// fixedinet resolves once; it retries only until it has an answer.
			a.mu.Lock()
			a.resolved = true
			a.mu.Unlock()
			return
		}
		if timer == nil {
			timer = time.NewTimer(a.interval)
			defer timer.Stop()
		} else {
			timer.Reset(a.interval)
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

func (a *dnsAddr) publish(ips []netip.Addr, err error) {
	var next Addr
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		addrs := make([]Address, 0, len(ips))
		for _, ip := range ips {
			addrs = append(addrs, Address{Host: ip.Unmap().String(), Port: a.port, Weight: 1})
		}
		slices.SortFunc(addrs, func(x, y Address) int { return strings.Compare(x.Host, y.Host) })
		addrs = slices.CompactFunc(addrs, func(x, y Address) bool { return x.Host == y.Host })
		next = Addr{State: AddrBound, Addrs: addrs}
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		next = Addr{State: AddrNeg}
	default:
		if a.v.Get().State == AddrBound {
			return // keep the last good answer through a transient failure
		}
		next = Addr{State: AddrFailed, Err: err}
	}
	if AddrEqual(a.v.Get(), next) {
		return
	}
	a.v.Set(next)
}

// classNamers are the built-in namers reachable as /$/<class>/...; each
// gets the path after the class name.
var classNamers = map[string]func(s *systemNamer, rest dtab.Path) dtab.Tree[Name]{
	"io.buoyant.rinet": func(s *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 2 {
			return dtab.NegTree[Name]()
		}
		port, ok := parseJavaInt(rest[0])
		if !ok {
			return dtab.NegTree[Name]()
		}
		id := dtab.Path{"$", "io.buoyant.rinet", rest[0], rest[1]}
		return dtab.LeafTree(Name{Bound: &Bound{ID: id, Residual: rest[2:], Addr: s.inetAddr(rest[1], port, false)}})
	},
	"io.buoyant.hostportPfx": func(_ *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 2 {
			return dtab.NegTree[Name]()
		}
		host, port, ok := splitHostPort(rest[1])
		if !ok {
			return dtab.NegTree[Name]()
		}
		return rewrite(rest[2:], rest[0], host, port)
	},
	"io.buoyant.porthostPfx": func(_ *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 2 {
			return dtab.NegTree[Name]()
		}
		host, port, ok := splitHostPort(rest[1])
		if !ok {
			return dtab.NegTree[Name]()
		}
		return rewrite(rest[2:], rest[0], port, host)
	},
	"io.buoyant.http.anyMethod": func(_ *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 1 || !isMethod(rest[0]) {
			return dtab.NegTree[Name]()
		}
		return rewrite(rest[1:])
	},
	"io.buoyant.http.anyMethodPfx": func(_ *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 2 || !isMethod(rest[1]) {
			return dtab.NegTree[Name]()
		}
		return rewrite(rest[2:], rest[0])
	},
	"io.buoyant.http.anyHost": func(_ *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 1 || !isHost(rest[0]) {
			return dtab.NegTree[Name]()
		}
		return rewrite(rest[1:])
	},
	"io.buoyant.http.anyHostPfx": func(_ *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 2 || !isHost(rest[1]) {
			return dtab.NegTree[Name]()
		}
		return rewrite(rest[2:], rest[0])
	},
	"io.buoyant.http.subdomainOf": func(_ *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 2 {
			return dtab.NegTree[Name]()
		}
		sub, ok := subdomain(rest[0], rest[1])
		if !ok {
			return dtab.NegTree[Name]()
		}
		return rewrite(rest[2:], sub)
	},
	"io.buoyant.http.subdomainOfPfx": func(_ *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 3 {
			return dtab.NegTree[Name]()
		}
		sub, ok := subdomain(rest[0], rest[2])
		if !ok {
			return dtab.NegTree[Name]()
		}
		return rewrite(rest[3:], rest[1], sub)
	},
	"io.buoyant.http.domainToPath": func(_ *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 1 {
			return dtab.NegTree[Name]()
		}
		labels, ok := reversedLabels(rest[0])
		if !ok {
			return dtab.NegTree[Name]()
		}
		return rewrite(rest[1:], labels...)
	},
	"io.buoyant.http.domainToPathPfx": func(_ *systemNamer, rest dtab.Path) dtab.Tree[Name] {
		if len(rest) < 2 {
			return dtab.NegTree[Name]()
		}
		labels, ok := reversedLabels(rest[1])
		if !ok {
			return dtab.NegTree[Name]()
		}
		return rewrite(rest[2:], append([]string{rest[0]}, labels...)...)
	},
}

// rewrite returns the unbound path head ++ tail as a one-leaf tree.
func rewrite(tail dtab.Path, head ...string) dtab.Tree[Name] {
	p := make(dtab.Path, 0, len(head)+len(tail))
	p = append(append(p, head...), tail...)
	return dtab.LeafTree(Name{Path: p})
}

// splitHostPort splits "host:port" where port is a lowercase DNS label
// (Linkerd's HostColonPort).
func splitHostPort(s string) (host, port string, ok bool) {
	host, port, found := strings.Cut(s, ":")
	if !found || host == "" || strings.Contains(port, ":") || !isDNSLabel(port) {
		return "", "", false
	}
	return host, port, true
}

// isDNSLabel reports whether s matches [a-z0-9][-a-z0-9]*[a-z0-9]? and has
// at most 63 characters.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// isMethod reports whether s matches [A-Z]+.
func isMethod(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// isHost reports whether s matches ^[A-Za-z0-9.:_-]+$.
func isHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == ':', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// subdomain returns the part of host (without any :port) before
// "."+domain, which must be non-empty.
func subdomain(domain, host string) (string, bool) {
	if !isHost(domain) || !isHost(host) {
		return "", false
	}
	host, _, _ = strings.Cut(host, ":")
	sub, ok := strings.CutSuffix(host, "."+domain)
	if !ok || sub == "" {
		return "", false
	}
	return sub, true
}

// reversedLabels splits host on "." and reverses the labels; a host with an
// empty label cannot become a path and is refused.
func reversedLabels(host string) ([]string, bool) {
	if !isHost(host) {
		return nil, false
	}
	labels := strings.Split(host, ".")
	slices.Reverse(labels)
	for _, l := range labels {
		if l == "" {
			return nil, false
		}
	}
	return labels, true
}
