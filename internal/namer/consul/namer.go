package consul

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// LocalDC is the datacenter path segment that means the agent's own.
const LocalDC = ".local"

// metaAuthority is the address metadata key whose value the router sends
// as the Host header (router.MetaAuthority; Linkerd's Metadata.authority).
const metaAuthority = "authority"

// Address metadata keys that transferMetadata fills, named as Linkerd's
// Metadata object names them: the instance's service Meta and its node's
// Meta, each a map[string]string.
const (
	MetaServiceMeta = "service_meta"
	MetaNodeMeta    = "node_meta"
)

// Options configure New. The zero value is Linkerd's defaults but for
// PreferServiceAddress (true in the config).
type Options struct {
	// Prefix is the path bound ids start with (default /#/io.l5d.consul).
	Prefix dtab.Path
	// IncludeTag: paths are /<dc>/<tag>/<service>.
	IncludeTag bool
	// HealthStatuses, when not empty, keeps only instances whose aggregated
	// health is one of them (useHealthCheck).
	HealthStatuses []string
	// PreferServiceAddress: the service's address when set, else the
	// node's.
	PreferServiceAddress bool
	// Weights by tag; the largest weight among an instance's tags applies
	// (1 when none does).
	Weights map[string]float64
	// TransferMetadata copies each instance's service Meta and node Meta
	// into its address metadata (keys MetaServiceMeta, MetaNodeMeta).
	TransferMetadata bool
	// SetHost gives every address the "authority" metadata
	// [<tag>.]<service>.service.<dc>.<domain> (the agent's datacenter for
	// .local and its DNS domain), which the router sends as the Host
	// header.
	SetHost bool
	// ConsistencyMode is default, stale or consistent.
	ConsistencyMode string
	// FailFast: a name with no answer yet fails while Consul cannot be
	// reached (default: it stays pending).
	FailFast bool
	// WaitTime bounds one blocking query (default 1m).
	WaitTime time.Duration
	// Backoff paces retries after errors (default jittered 100ms–5s).
	Backoff backoff.Policy
	// OnClose, when set, runs when the namer is closed (e.g. to close the
	// client's idle connections).
	OnClose func()
	// Resolver resolves instance addresses that are host names (default
	// net.DefaultResolver).
	Resolver Resolver
}

// Resolver resolves host names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Namer is the io.l5d.consul namer. It is safe for concurrent use; Close
// (or cancelling the Env's context) stops every watch.
type Namer struct {
	cli    *api.Client
	o      Options
	logger *slog.Logger

	queries  *telemetry.Counter
	failures *telemetry.Counter

	loops naming.Loops

	mu       sync.Mutex
	services map[key]*service // services being watched

	selfMu sync.Mutex
	self   *agentSelf // the agent's datacenter and domain, once known
}

// agentSelf is what setHost needs to know about the agent.
type agentSelf struct{ dc, domain string }

// agentInfo returns the agent's datacenter and DNS domain, asking once.
func (n *Namer) agentInfo(ctx context.Context) (*agentSelf, error) {
	n.selfMu.Lock()
	defer n.selfMu.Unlock()
	if n.self != nil {
		return n.self, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	q := (&api.QueryOptions{}).WithContext(ctx)
	var raw struct {
		Config      struct{ Datacenter, Domain string }
		DebugConfig struct{ DNSDomain string }
	}
	req := n.cli.Raw()
	if _, err := req.Query("/v1/agent/self", &raw, q); err != nil {
		return nil, fmt.Errorf("consul: reading the agent's datacenter and domain: %w", err)
	}
	domain := cmp.Or(raw.DebugConfig.DNSDomain, raw.Config.Domain, "consul")
	n.self = &agentSelf{dc: raw.Config.Datacenter, domain: strings.TrimSuffix(domain, ".")}
	return n.self, nil
}

// key identifies one watched set of instances.
type key struct{ dc, tag, name string }

// New returns a namer asking Consul through cli. Nothing is asked until a
// lookup is watched.
func New(env naming.Env, cli *api.Client, o Options) *Namer {
	if len(o.Prefix) == 0 {
		o.Prefix = dtab.Path{"#", Kind}
	}
	if o.WaitTime <= 0 {
		o.WaitTime = time.Minute
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Backoff == (backoff.Policy{}) {
		o.Backoff, _ = backoff.New(backoff.Options{Kind: backoff.KindJittered, MinMs: 100, MaxMs: 5000})
	}
	n := &Namer{cli: cli, o: o, logger: env.Logger, services: map[key]*service{}}
	if n.logger == nil {
		n.logger = slog.New(slog.DiscardHandler)
	}
	scope := env.Scope
	n.queries = scope.Counter("lookups")
	n.failures = scope.Counter("failures")
	ctx := env.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	n.loops.Init(ctx)
	return n
}

// Close stops every watch and waits for them to end. Lookups keep their
// last answers.
func (n *Namer) Close() error {
	n.loops.Close()
	if n.o.OnClose != nil {
		n.o.OnClose()
	}
	return nil
}

// Watching returns how many services are being watched (for leak tests).
func (n *Namer) Watching() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.services)
}

// Lookup implements naming.Namer: path is /<dc>/<service>[/residual…], or
// /<dc>/<tag>/<service>[/residual…] with IncludeTag. A path too short for
// that is negative.
func (n *Namer) Lookup(path dtab.Path) naming.Lookup {
	want := 2
	if n.o.IncludeTag {
		want = 3
	}
	if len(path) < want {
		return watch.Const[watch.Activity[dtab.Tree[naming.Name]]]{V: watch.OkActivity(dtab.NegTree[naming.Name]())}
	}
	k := key{dc: path[0], name: path[want-1]}
	if n.o.IncludeTag {
		k.tag = path[1]
	}
	n.mu.Lock()
	s := n.services[k]
	if s == nil {
		s = &service{
			n:      n,
			key:    k,
			id:     n.o.Prefix.Concat(path[:want]),
			addr:   watch.NewVar(naming.Addr{State: naming.AddrPending}),
			status: watch.NewVar(naming.NameStatus{}),
		}
	}
	n.mu.Unlock()
	residual := slices.Clone(path[want:])
	return naming.WatchedLookup(s, s.status, &naming.Bound{ID: s.id, Residual: residual, Addr: naming.WatchedAddr(s, s.addr)})
}

// A service's naming.NameStatus: pending until Consul answers (or while it
// is unreachable, without failFast), Neg when no instance is registered
// (with that tag), Bound with its healthy instances in addr, Failed when it
// never answered (failFast).

// service is one watched (dc, tag, service): its state and address set,
// shared by every lookup of it while it is watched.
type service struct {
	n      *Namer
	key    key
	id     dtab.Path
	addr   *watch.Var[naming.Addr]
	status *watch.Var[naming.NameStatus]

	pubMu   sync.Mutex // serialises apply
	lastErr string     // last failure logged (under pubMu)

	errMu    sync.Mutex
	shownErr string // lastErr for the state page (under errMu)

	loop naming.SharedLoop
}

// Hold counts a subscriber; the first one starts the watch and makes
// the service the one later lookups share.
func (s *service) Hold() {
	naming.HoldIn(&s.loop, &s.n.loops, s.watch, &s.n.mu, s.n.services, s.key, s)
}

// Unhold undoes Hold; the last one stops the loop and forgets the
// entry, so that unwatched names cost nothing.
func (s *service) Unhold() {
	naming.UnholdIn(&s.loop, &s.n.mu, s.n.services, s.key, s)
}

// watch runs blocking queries on the service's health endpoint until ctx
// ends, publishing each answer; errors back off and keep the last answer.
func (s *service) watch(ctx context.Context) {
	n := s.n
	bo := n.o.Backoff.Stream()
	var index uint64
	for ctx.Err() == nil {
		q := &api.QueryOptions{WaitIndex: index, WaitTime: n.o.WaitTime}
		if s.key.dc != LocalDC {
			q.Datacenter = s.key.dc
		}
		switch n.o.ConsistencyMode {
		case ModeStale:
			q.AllowStale = true
		case ModeConsistent:
			q.RequireConsistent = true
		}
		authority, err := s.authority(ctx)
		var entries []*api.ServiceEntry
		var meta *api.QueryMeta
		if err == nil {
			n.queries.Inc()
			// Consul answers a blocking query within WaitTime plus up to
			// 1/16 of jitter; a silent agent must not hold the watch
			// much longer.
			qctx, cancel := context.WithTimeout(ctx, 2*n.o.WaitTime+time.Second)
			entries, meta, err = n.cli.Health().Service(s.key.name, s.key.tag, false, q.WithContext(qctx))
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil && isNoSuchDC(err) {
			// An unknown datacenter is a name that does not exist.
			err, entries = nil, nil
			meta = &api.QueryMeta{}
		}
		if err != nil {
			s.apply(ctx, result{err: fmt.Errorf("consul: health of service %q in datacenter %q: %w", s.key.name, s.key.dc, err)})
			index = 0 // Consul may have restarted with a fresh index
			select {
			case <-ctx.Done():
				return
			case <-time.After(bo.Next()):
			}
			continue
		}
		bo.Reset()
		s.apply(ctx, n.result(ctx, entries, authority))
		switch {
		case meta.LastIndex == 0:
			// No blocking index (e.g. an unknown datacenter): poll slowly.
			select {
			case <-ctx.Done():
				return
			case <-time.After(n.o.WaitTime / 4):
			}
			index = 0
		case meta.LastIndex < index:
			index = 0 // the index went backwards: start over
		default:
			index = meta.LastIndex
		}
	}
}

// authority is the Host that setHost gives the service's addresses ("" if
// not set).
func (s *service) authority(ctx context.Context) (string, error) {
	if !s.n.o.SetHost {
		return "", nil
	}
	self, err := s.n.agentInfo(ctx)
	if err != nil {
		return "", err
	}
	dc := s.key.dc
	if dc == LocalDC {
		dc = self.dc
	}
	host := s.key.name + ".service." + dc + "." + self.domain
	if s.key.tag != "" {
		host = s.key.tag + "." + host // Consul DNS's tagged form
	}
	return host, nil
}

func isNoSuchDC(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return strings.Contains(se.Body, "No path to datacenter")
	}
	return strings.Contains(err.Error(), "No path to datacenter")
}

// result is the outcome of one query.
type result struct {
	neg   bool
	addrs []naming.Address
	err   error
}

// result turns health entries into an address set: no entry at all is
// negative; entries filtered out by health leave a bound, possibly empty,
// set.
func (n *Namer) result(ctx context.Context, entries []*api.ServiceEntry, authority string) result {
	if len(entries) == 0 {
		return result{neg: true}
	}
	byHostPort := map[netip.AddrPort]naming.Address{}
	for _, e := range entries {
		if e.Service == nil {
			continue
		}
		if len(n.o.HealthStatuses) > 0 && !slices.Contains(n.o.HealthStatuses, e.Checks.AggregatedStatus()) {
			continue
		}
		host := ""
		if e.Node != nil {
			host = e.Node.Address
		}
		if n.o.PreferServiceAddress && e.Service.Address != "" {
			host = e.Service.Address
		}
		if e.Service.Port < 1 || e.Service.Port > 65535 {
			n.logger.Warn("io.l5d.consul: instance has no port; skipped", "service", e.Service.Service, "instance", e.Service.ID, "port", e.Service.Port)
			continue
		}
		ips, err := n.resolve(ctx, host)
		if err != nil {
			n.logger.Warn("io.l5d.consul: instance address does not resolve; skipped",
				"service", e.Service.Service, "instance", e.Service.ID, "address", host, "err", err)
			continue
		}
		w := 1.0
		found := false
		for _, t := range e.Service.Tags {
			if tw, ok := n.o.Weights[t]; ok && (!found || tw > w) {
				w, found = tw, true
			}
		}
		var meta map[string]any
		if n.o.TransferMetadata {
			meta = map[string]any{}
			if len(e.Service.Meta) > 0 {
				meta[MetaServiceMeta] = maps.Clone(e.Service.Meta)
			}
			if e.Node != nil && len(e.Node.Meta) > 0 {
				meta[MetaNodeMeta] = maps.Clone(e.Node.Meta)
			}
		}
		if authority != "" {
			if meta == nil {
				meta = map[string]any{}
			}
			meta[metaAuthority] = authority
		}
		if len(meta) == 0 {
			meta = nil
		}
		for _, ip := range ips {
			ap := netip.AddrPortFrom(ip, uint16(e.Service.Port))
			a := naming.Address{Host: ip.String(), Port: e.Service.Port, Weight: w, Meta: meta}
			if old, dup := byHostPort[ap]; dup {
				a.Weight = max(a.Weight, old.Weight)
			}
			byHostPort[ap] = a
		}
	}
	out := make([]naming.Address, 0, len(byHostPort))
	for _, ap := range slices.SortedFunc(maps.Keys(byHostPort), func(a, b netip.AddrPort) int { return a.Compare(b) }) {
		out = append(out, byHostPort[ap])
	}
	return result{addrs: out}
}

// resolve returns the IP addresses of an instance address: itself when it
// is an IP address, else what the system resolver says of the host name
// (Linkerd resolves them too).
func (n *Namer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if host == "" {
		return nil, errors.New("empty address")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return nil, errors.New("an IPv6 zone is not routable")
		}
		return []netip.Addr{ip.Unmap()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := n.o.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if ip.Zone() == "" {
			out = append(out, ip.Unmap())
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no IP address")
	}
	return out, nil
}

// apply publishes a result: a failure keeps the last answer; the address
// set and the state are set only when they change.
func (s *service) apply(ctx context.Context, res result) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if ctx.Err() != nil {
		return // stopped: a newer watch may be running
	}
	log := s.n.logger
	old := s.status.Get()
	var next naming.NameStatus
	var newAddr *naming.Addr
	switch {
	case res.err != nil:
		s.n.failures.Inc()
		if msg := res.err.Error(); msg != s.lastErr {
			s.lastErr = msg
			s.setShownErr(msg)
			log.Warn("io.l5d.consul: cannot watch service; keeping the last answer", "id", s.id.String(), "err", res.err)
		}
		if old.State == naming.NameNeg || old.State == naming.NameBound || !s.n.o.FailFast {
			return
		}
		if old.State == naming.NameFailed && old.Err.Error() == res.err.Error() {
			return
		}
		next = naming.NameStatus{State: naming.NameFailed, Err: res.err}
		newAddr = &naming.Addr{State: naming.AddrFailed, Err: res.err}
	case res.neg:
		next = naming.NameStatus{State: naming.NameNeg}
		if old.State != naming.NameNeg {
			newAddr = &naming.Addr{State: naming.AddrNeg}
		}
	default:
		next = naming.NameStatus{State: naming.NameBound}
		a := naming.Addr{State: naming.AddrBound, Addrs: res.addrs}
		if !naming.AddrEqual(s.addr.Get(), a) {
			newAddr = &a
		}
	}
	if res.err == nil && s.lastErr != "" {
		log.Info("io.l5d.consul: watching service again", "id", s.id.String())
		s.lastErr = ""
		s.setShownErr("")
	}
	// Addresses first, so a name that turns bound is bound to its current set.
	if newAddr != nil {
		s.addr.Set(*newAddr)
	}
	if next.State != old.State || next.State == naming.NameFailed {
		s.status.Set(next)
	}
}

func (s *service) setShownErr(msg string) {
	s.errMu.Lock()
	s.shownErr = msg
	s.errMu.Unlock()
}
