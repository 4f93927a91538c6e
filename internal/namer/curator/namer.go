package curator

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
	"github.com/linnet-mesh/linnet/internal/zk"
)

// Options configure New.
type Options struct {
	// Prefix is where bound ids start (default /#/io.l5d.curator).
	Prefix dtab.Path
	// BasePath is Curator's base path (default /).
	BasePath string
	// Servers are the ensemble's "host:port" addresses.
	Servers []string
	// SessionTimeout is the ZooKeeper session timeout (default 10s).
	SessionTimeout time.Duration
	// RequestTimeout bounds each ZooKeeper request (default 5s).
	RequestTimeout time.Duration
	// Resolve turns an instance's host name into IPs (default: the system
	// resolver). IP literals are never resolved.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Namer is the io.l5d.curator namer. It is safe for concurrent use; Close
// (or cancelling the Env's context) stops every watch and ends the
// ZooKeeper session.
type Namer struct {
	prefix  dtab.Path
	base    string // BasePath without its trailing slash ("" for /)
	cli     *zk.Client
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	log     *slog.Logger

	lookups  *telemetry.Counter
	failures *telemetry.Counter

	loops     naming.Loops
	closeOnce sync.Once

	mu       sync.Mutex
	services map[string]*service // watched services, by znode path
}

// New returns a namer. Nothing is asked of ZooKeeper until a lookup is
// watched.
func New(env naming.Env, o Options) (*Namer, error) {
	if o.Prefix == nil {
		o.Prefix = dtab.Path{"#", Kind}
	}
	if o.BasePath == "" {
		o.BasePath = "/"
	}
	if err := zk.ValidatePath(o.BasePath); err != nil {
		return nil, fmt.Errorf("%s: basePath: %w", Kind, err)
	}
	if o.Resolve == nil {
		o.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := zk.Dial(zk.Options{Servers: o.Servers, SessionTimeout: o.SessionTimeout, RequestTimeout: o.RequestTimeout, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	n := &Namer{
		prefix:   o.Prefix,
		base:     strings.TrimSuffix(o.BasePath, "/"),
		cli:      cli,
		resolve:  o.Resolve,
		log:      log,
		lookups:  env.Scope.Counter("lookups"),
		failures: env.Scope.Counter("failures"),
		services: map[string]*service{},
	}
	ctx := env.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	n.loops.Init(ctx)
	context.AfterFunc(ctx, func() { n.Close() }) // the host shut down: end the session too
	return n, nil
}

// Close stops every watch and ends the session. Lookups keep their last
// answers. It is idempotent.
func (n *Namer) Close() error {
	n.closeOnce.Do(func() {
		n.loops.Close()
		n.cli.Close()
	})
	return nil
}

// Lookup implements naming.Namer: /<service>/<rest...> binds the id
// <prefix>/<service> with residual /<rest...> while the service has
// usable instances, and is negative otherwise (no such znode, no
// instance). A service name that cannot be a znode name is negative.
func (n *Namer) Lookup(path dtab.Path) naming.Lookup {
	n.lookups.Inc()
	if len(path) == 0 || zk.ValidateNodeName(path[0]) != nil {
		return watch.Const[watch.Activity[dtab.Tree[naming.Name]]]{V: watch.OkActivity(dtab.NegTree[naming.Name]())}
	}
	s := n.serviceFor(n.base + "/" + path[0])
	b := &naming.Bound{
		ID:       n.prefix.Concat(path[:1]),
		Residual: slices.Clone(path[1:]),
		Addr:     naming.WatchedAddr(s, s.addr),
	}
	return naming.WatchedLookup(s, s.status, b)
}

func (n *Namer) serviceFor(zkPath string) *service {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.services[zkPath]; s != nil {
		return s
	}
	return &service{
		n:      n,
		path:   zkPath,
		status: watch.NewVar(naming.NameStatus{}),
		addr:   watch.NewVar(naming.Addr{State: naming.AddrPending}),
	}
}

// State implements naming.StateReporter (/namer_state/<prefix>.json): the
// services being watched.
func (n *Namer) State() any {
	type serviceState struct {
		State     string   `json:"state"`
		Instances []string `json:"instances"`
		Addresses []string `json:"addresses"`
		Error     string   `json:"error,omitempty"`
	}
	n.mu.Lock()
	all := slices.Collect(maps.Values(n.services))
	n.mu.Unlock()
	out := map[string]serviceState{}
	for _, s := range all {
		st := s.status.Get()
		s.mu.Lock()
		ss := serviceState{Instances: slices.Sorted(maps.Keys(s.instances)), Addresses: []string{}, Error: s.shownErr}
		s.mu.Unlock()
		if ss.Instances == nil {
			ss.Instances = []string{}
		}
		for _, a := range s.addr.Get().Addrs {
			ss.Addresses = append(ss.Addresses, a.HostPort())
		}
		ss.State = [...]string{"pending", "neg", "bound", "failed"}[st.State]
		if st.State == naming.NameFailed && ss.Error == "" {
			ss.Error = st.Err.Error()
		}
		out[s.path] = ss
	}
	return map[string]any{"basePath": n.base + "/", "services": out}
}

// addresses turns instances into an address set: one address each (the
// sslPort or the port), sorted, without duplicates.
func (n *Namer) addresses(ctx context.Context, in Instance) ([]naming.Address, error) {
	port, ssl := in.Target()
	var meta map[string]any
	if ssl {
		meta = map[string]any{"ssl": true}
	}
	host := strings.TrimSuffix(strings.TrimPrefix(in.Address, "["), "]")
	if ip, err := netip.ParseAddr(host); err == nil {
		return []naming.Address{{Host: ip.Unmap().String(), Port: port, Weight: 1, Meta: meta}}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := n.resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolving address %q: %w", in.Address, err)
	}
	out := make([]naming.Address, 0, len(ips))
	for _, ip := range ips {
		out = append(out, naming.Address{Host: ip.Unmap().String(), Port: port, Weight: 1, Meta: meta})
	}
	return out, nil
}

func sortAddrs(out []naming.Address) []naming.Address {
	slices.SortFunc(out, func(a, b naming.Address) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port))
	})
	out = slices.CompactFunc(out, func(a, b naming.Address) bool { return a.Host == b.Host && a.Port == b.Port })
	if out == nil {
		out = []naming.Address{}
	}
	return out
}

// Interface guards.
var (
	_ naming.Namer         = (*Namer)(nil)
	_ naming.StateReporter = (*Namer)(nil)
	_ naming.Holder        = (*service)(nil)
)
