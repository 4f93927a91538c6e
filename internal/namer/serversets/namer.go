package serversets

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
	// Kind is Kind (serversets) or LeaderKind (leader groups).
	Kind string
	// Prefix is where bound ids start (default /#/<kind>).
	Prefix dtab.Path
	// Servers are the ensemble's "host:port" addresses.
	Servers []string
	// SessionTimeout is the ZooKeeper session timeout (default 10s).
	SessionTimeout time.Duration
	// RequestTimeout bounds each ZooKeeper request (default 5s).
	RequestTimeout time.Duration
	// Resolve turns a member's host name into IPs (default: the system
	// resolver). IP literals are never resolved.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Namer is the io.l5d.serversets or io.l5d.zkLeader namer. It is safe for
// concurrent use; Close (or cancelling the Env's context) stops every
// watch and ends the ZooKeeper session.
type Namer struct {
	kind    string
	leader  bool
	prefix  dtab.Path
	cli     *zk.Client
	resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	log     *slog.Logger

	lookups  *telemetry.Counter
	failures *telemetry.Counter

	loops     naming.Loops
	closeOnce sync.Once

	mu    sync.Mutex
	nodes map[string]*node // watched znodes, by path
}

// New returns a namer. Nothing is asked of ZooKeeper until a lookup is
// watched.
func New(env naming.Env, o Options) (*Namer, error) {
	if o.Kind == "" {
		o.Kind = Kind
	}
	if o.Prefix == nil {
		o.Prefix = dtab.Path{"#", o.Kind}
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
		return nil, fmt.Errorf("%s: %w", o.Kind, err)
	}
	n := &Namer{
		kind:     o.Kind,
		leader:   o.Kind == LeaderKind,
		prefix:   o.Prefix,
		cli:      cli,
		resolve:  o.Resolve,
		log:      log,
		lookups:  env.Scope.Counter("lookups"),
		failures: env.Scope.Counter("failures"),
		nodes:    map[string]*node{},
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

// candidate is one way of reading a looked-up path: its first k elements
// name a znode (the last one possibly with :endpoint), the rest is the
// residual.
type candidate struct {
	node  *node
	addr  *watch.Var[naming.Addr] // the node's address set for the endpoint
	bound *naming.Bound
}

// Lookup implements naming.Namer. Like Linkerd's, it reads the path as a
// znode path, longest first: /#/io.l5d.serversets/a/b/c binds the id
// /#/io.l5d.serversets/a/b/c if the serverset /a/b/c has live members,
// else /#/io.l5d.serversets/a/b with residual /c if /a/b has, and so on;
// none (the root does not count) is negative. A serverset without a live
// member (ALIVE, with the endpoint asked for) is negative, as in Finagle's
// zk2 resolver, whether its znode exists or not. Unlike Linkerd, which
// chose the prefix once, the choice follows ZooKeeper: a longer prefix
// that gains members takes over, one that loses them all gives way.
// With io.l5d.serversets, "name:endpoint" as the last element of a prefix
// selects the members' additional endpoint "endpoint" of serverset name.
func (n *Namer) Lookup(path dtab.Path) naming.Lookup {
	n.lookups.Inc()
	var cands []candidate
	for k := len(path); k >= 1; k-- {
		zkPath, endpoint, ok := n.znodeOf(path[:k])
		if !ok {
			continue // not a znode path: cannot exist
		}
		nd := n.nodeFor(zkPath)
		addr := nd.addrVar(endpoint)
		cands = append(cands, candidate{node: nd, addr: addr, bound: &naming.Bound{
			ID:       n.prefix.Concat(path[:k]),
			Residual: slices.Clone(path[k:]),
			Addr:     naming.WatchedAddr(nd, addr),
		}})
	}
	if len(cands) == 0 {
		return watch.Const[watch.Activity[dtab.Tree[naming.Name]]]{V: watch.OkActivity(dtab.NegTree[naming.Name]())}
	}
	return &lookup{cands: cands}
}

// znodeOf turns path elements into a znode path and an endpoint name.
func (n *Namer) znodeOf(elems dtab.Path) (zkPath, endpoint string, ok bool) {
	segs := slices.Clone([]string(elems))
	if !n.leader {
		last := segs[len(segs)-1]
		if name, ep, found := strings.Cut(last, ":"); found {
			if name == "" || ep == "" {
				return "", "", false
			}
			segs[len(segs)-1], endpoint = name, ep
		}
	}
	for _, s := range segs {
		if zk.ValidateNodeName(s) != nil {
			return "", "", false
		}
	}
	return "/" + strings.Join(segs, "/"), endpoint, true
}

func (n *Namer) nodeFor(zkPath string) *node {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nd := n.nodes[zkPath]; nd != nil {
		return nd
	}
	return &node{
		n:      n,
		path:   zkPath,
		status: watch.NewVar(naming.NameStatus{}),
		addrs:  map[string]*watch.Var[naming.Addr]{},
	}
}

// lookup is the answer for one path: the first of its candidates (longest
// first) whose znode exists.
type lookup struct {
	cands []candidate
}

func (l *lookup) tree() watch.Activity[dtab.Tree[naming.Name]] {
	for _, c := range l.cands {
		a := c.addr.Get()
		switch a.State {
		case naming.AddrPending:
			return watch.PendingActivity[dtab.Tree[naming.Name]]()
		case naming.AddrFailed:
			return watch.FailedActivity[dtab.Tree[naming.Name]](a.Err)
		case naming.AddrBound:
			return watch.OkActivity(dtab.LeafTree(naming.Name{Bound: c.bound}))
		}
	}
	return watch.OkActivity(dtab.NegTree[naming.Name]())
}

// Get implements watch.Value: the last known answer.
func (l *lookup) Get() watch.Activity[dtab.Tree[naming.Name]] { return l.tree() }

// Subscribe implements watch.Value: it holds every candidate's znode (so
// that they are watched) and publishes the answer when it changes.
func (l *lookup) Subscribe(f func(watch.Activity[dtab.Tree[naming.Name]])) func() {
	var mu sync.Mutex
	ready, cancelled := false, false
	var last watch.Activity[dtab.Tree[naming.Name]]
	emit := func() {
		a := l.tree()
		if ready && sameAnswer(a, last) {
			return
		}
		last = a
		f(a)
	}
	cancels := make([]func(), 0, len(l.cands))
	for _, c := range l.cands {
		c.node.Hold()
		stop := c.addr.Subscribe(func(naming.Addr) {
			mu.Lock()
			defer mu.Unlock()
			if ready && !cancelled {
				emit()
			}
		})
		cancels = append(cancels, func() { stop(); c.node.Unhold() })
	}
	mu.Lock()
	emit()
	ready = true
	mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			cancelled = true
			mu.Unlock()
			for _, c := range cancels {
				c()
			}
		})
	}
}

func sameAnswer(a, b watch.Activity[dtab.Tree[naming.Name]]) bool {
	if a.State != b.State {
		return false
	}
	switch a.State {
	case watch.Failed:
		return a.Err.Error() == b.Err.Error()
	case watch.Ok:
		if a.Value.Kind != b.Value.Kind {
			return false
		}
		if a.Value.Kind == dtab.Leaf {
			return a.Value.Value.Bound == b.Value.Value.Bound
		}
	}
	return true
}

// State implements naming.StateReporter (/namer_state/<prefix>.json): the
// znodes being watched.
func (n *Namer) State() any {
	type nodeState struct {
		State   string `json:"state"`
		Members int    `json:"members"`
		Error   string `json:"error,omitempty"`
	}
	n.mu.Lock()
	nodes := slices.Collect(maps.Values(n.nodes))
	n.mu.Unlock()
	out := map[string]nodeState{}
	for _, nd := range nodes {
		st := nd.status.Get()
		nd.mu.Lock()
		s := nodeState{Members: len(nd.members), Error: nd.shownErr}
		nd.mu.Unlock()
		s.State = [...]string{"pending", "neg", "bound", "failed"}[st.State]
		if st.State == naming.NameFailed && s.Error == "" {
			s.Error = st.Err.Error()
		}
		out[nd.path] = s
	}
	return map[string]any{"znodes": out}
}

// memberInfo is one member znode as the namer understood it.
type memberInfo struct {
	name  string
	seq   int64
	alive bool
	// endpoints by name ("" is the service endpoint; a leader's addresses
	// are all under ""), resolved to IPs.
	endpoints map[string][]naming.Address
}

// addresses derives a znode's address set for one endpoint.
func (n *Namer) addresses(members map[string]*memberInfo, endpoint string) []naming.Address {
	var out []naming.Address
	if n.leader {
		var lead *memberInfo
		for _, m := range members {
			if lead == nil || m.seq < lead.seq {
				lead = m
			}
		}
		if lead != nil {
			out = append(out, lead.endpoints[""]...)
		}
	} else {
		for _, m := range members {
			if m.alive {
				out = append(out, m.endpoints[endpoint]...)
			}
		}
	}
	slices.SortFunc(out, func(a, b naming.Address) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port))
	})
	out = slices.CompactFunc(out, func(a, b naming.Address) bool { return a.Host == b.Host && a.Port == b.Port })
	if out == nil {
		out = []naming.Address{}
	}
	return out
}

// parse reads a member znode's data into a memberInfo: a serverset
// member's JSON (all its endpoints), or a leader's host:port list.
func (n *Namer) parse(ctx context.Context, name string, seq int64, data []byte) (*memberInfo, error) {
	m := &memberInfo{name: name, seq: seq, endpoints: map[string][]naming.Address{}}
	var eps map[string]Endpoint
	if n.leader {
		list, err := ParseLeaderData(data)
		if err != nil {
			return nil, err
		}
		m.alive = true
		var all []naming.Address
		for _, e := range list {
			addrs, err := n.resolveEndpoint(ctx, e)
			if err != nil {
				return nil, err
			}
			all = append(all, addrs...)
		}
		m.endpoints[""] = all
		return m, nil
	}
	mem, err := ParseMember(data)
	if err != nil {
		return nil, err
	}
	m.alive = mem.Status == StatusAlive
	eps = map[string]Endpoint{"": mem.ServiceEndpoint}
	for k, e := range mem.AdditionalEndpoints {
		eps[k] = e
	}
	for k, e := range eps {
		addrs, err := n.resolveEndpoint(ctx, e)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", k, err)
		}
		for i := range addrs {
			if mem.Shard != nil {
				addrs[i].Meta = map[string]any{"shard": *mem.Shard}
			}
		}
		m.endpoints[k] = addrs
	}
	return m, nil
}

func (n *Namer) resolveEndpoint(ctx context.Context, e Endpoint) ([]naming.Address, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(e.Host, "["), "]")
	if ip, err := netip.ParseAddr(host); err == nil {
		return []naming.Address{{Host: ip.Unmap().String(), Port: e.Port, Weight: 1}}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := n.resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolving host %q: %w", e.Host, err)
	}
	out := make([]naming.Address, 0, len(ips))
	for _, ip := range ips {
		out = append(out, naming.Address{Host: ip.Unmap().String(), Port: e.Port, Weight: 1})
	}
	return out, nil
}

// Interface guards.
var (
	_ naming.Namer         = (*Namer)(nil)
	_ naming.StateReporter = (*Namer)(nil)
)
