package dnssrv

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
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
)

// Option configures New.
type Option func(*Namer)

// WithPrefix sets the path bound ids start with (default /#/io.l5d.dnssrv).
func WithPrefix(p dtab.Path) Option { return func(n *Namer) { n.prefix = p } }

// WithInterval sets how often a watched name is re-resolved (default 5s).
func WithInterval(d time.Duration) Option { return func(n *Namer) { n.interval = d } }

// WithResolver replaces the system resolver.
func WithResolver(r Resolver) Option { return func(n *Namer) { n.resolver = r } }

// WithTimeout bounds one resolution of a name: its SRV query and the
// address queries of its targets (default 10s).
func WithTimeout(d time.Duration) Option { return func(n *Namer) { n.timeout = d } }

// zeroWeight is the weight of an SRV record of weight 0 in a group that
// has non-zero weights: RFC 2782 gives it "a very small chance" of being
// chosen (SRV weights are integers, so this is at most 1% of any other).
const zeroWeight = 0.01

// Namer is the io.l5d.dnssrv namer. It is safe for concurrent use; Close
// (or cancelling the Env's context) stops every poll.
type Namer struct {
	prefix   dtab.Path
	interval time.Duration
	timeout  time.Duration
	resolver Resolver
	logger   *slog.Logger

	resolutions *telemetry.Counter
	failures    *telemetry.Counter

	loops naming.Loops

	mu      sync.Mutex
	records map[string]*record // names being watched, by record name
}

// New returns a namer. Nothing is resolved until a lookup is watched.
func New(env naming.Env, opts ...Option) *Namer {
	n := &Namer{
		prefix:   dtab.Path{"#", Kind},
		interval: DefaultRefreshIntervalSeconds * time.Second,
		timeout:  10 * time.Second,
		resolver: SystemResolver(),
		logger:   env.Logger,
		records:  map[string]*record{},
	}
	for _, o := range opts {
		o(n)
	}
	if n.logger == nil {
		n.logger = slog.New(slog.DiscardHandler)
	}
	n.resolutions = env.Scope.Counter("lookups")
	n.failures = env.Scope.Counter("failures")
	ctx := env.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	n.loops.Init(ctx)
	return n
}

// Close stops every poll and waits for them to end. Lookups keep their
// last answers.
func (n *Namer) Close() error {
	n.loops.Close()
	return nil
}

// Lookup implements naming.Namer. The first element of path is the SRV
// record name (e.g. _http._tcp.web.example.); the rest is the residual.
// The answer is pending until the first resolution, then negative when the
// name does not exist (NXDOMAIN, or no SRV records), or a leaf bound to
// /#/<prefix>/<record name>. The name is resolved, and re-resolved every
// interval, only while the answer or the bound name's addresses are
// watched.
func (n *Namer) Lookup(path dtab.Path) naming.Lookup {
	if len(path) == 0 {
		return watch.Const[watch.Activity[dtab.Tree[naming.Name]]]{V: watch.OkActivity(dtab.NegTree[naming.Name]())}
	}
	name := path[0]
	n.mu.Lock()
	r := n.records[name]
	if r == nil {
		r = &record{
			n:      n,
			name:   name,
			id:     append(slices.Clone(n.prefix), name),
			addr:   watch.NewVar(naming.Addr{State: naming.AddrPending}),
			status: watch.NewVar(naming.NameStatus{}),
		}
	}
	n.mu.Unlock()
	residual := slices.Clone(path[1:])
	return naming.WatchedLookup(r, r.status, &naming.Bound{ID: r.id, Residual: residual, Addr: naming.WatchedAddr(r, r.addr)})
}

// record is one SRV name: its state and its address set, shared by every
// lookup of the name while it is watched. It holds nothing per lookup, so
// lookups with ever new residuals cost only what their holders keep.
type record struct {
	n      *Namer
	name   string
	id     dtab.Path
	addr   *watch.Var[naming.Addr]
	status *watch.Var[naming.NameStatus]

	pubMu   sync.Mutex // serialises apply
	lastErr string     // last failure logged, to log changes only (under pubMu)

	loop naming.SharedLoop
}

// Hold counts a subscriber; the first one starts the poll and makes the
// record the one later lookups of the name share.
func (r *record) Hold() {
	naming.HoldIn(&r.loop, &r.n.loops, r.poll, &r.n.mu, r.n.records, r.name, r)
}

// Unhold undoes Hold; the last one stops the loop and forgets the
// entry, so that unwatched names cost nothing.
func (r *record) Unhold() {
	naming.UnholdIn(&r.loop, &r.n.mu, r.n.records, r.name, r)
}

func (r *record) poll(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		res := r.n.resolve(ctx, r.name)
		r.apply(ctx, res)
		timer.Reset(r.n.interval)
	}
}

// result is the outcome of one resolution.
type result struct {
	neg   bool
	addrs []naming.Address
	err   error
}

// apply publishes a resolution: a failure keeps the last answer (and is
// the answer only when there was none); the address set and the state are
// set only when they change.
func (r *record) apply(ctx context.Context, res result) {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	if ctx.Err() != nil {
		return // stopped: a newer poll may be running
	}
	log := r.n.logger
	old := r.status.Get()
	var next naming.NameStatus
	var newAddr *naming.Addr
	switch {
	case res.err != nil:
		r.n.failures.Inc()
		if msg := res.err.Error(); msg != r.lastErr {
			r.lastErr = msg
			if old.State == naming.NameNeg || old.State == naming.NameBound {
				log.Warn("io.l5d.dnssrv: cannot resolve; keeping the last answer", "name", r.name, "err", res.err)
			} else {
				log.Warn("io.l5d.dnssrv: cannot resolve", "name", r.name, "err", res.err)
			}
		}
		if old.State == naming.NameNeg || old.State == naming.NameBound || (old.State == naming.NameFailed && old.Err.Error() == res.err.Error()) {
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
		if !naming.AddrEqual(r.addr.Get(), a) {
			newAddr = &a
		}
	}
	if res.err == nil && r.lastErr != "" {
		log.Info("io.l5d.dnssrv: resolving again", "name", r.name)
		r.lastErr = ""
	}
	// Addresses first, so a name that turns bound is bound to its current set.
	if newAddr != nil {
		r.addr.Set(*newAddr)
	}
	if next.State != old.State || next.State == naming.NameFailed { // failed: with a new error
		r.status.Set(next)
	}
}

// resolve asks for the SRV records of name and the addresses of their
// targets. Only the lowest-priority group with a resolvable target is
// used (RFC 2782: higher values are fall-backs); "." targets (service
// decidedly not available) and targets that do not exist are skipped, so
// a name whose targets are all gone is bound to an empty set. Any other
// DNS failure fails the whole resolution.
func (n *Namer) resolve(ctx context.Context, name string) result {
	n.resolutions.Inc()
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	srvs, err := n.resolver.SRV(ctx, name)
	if IsNotFound(err) {
		return result{neg: true}
	}
	if err != nil {
		return result{err: fmt.Errorf("io.l5d.dnssrv: SRV %s: %w", name, err)}
	}
	slices.SortStableFunc(srvs, func(a, b *net.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	ips := map[string][]netip.Addr{}
	for len(srvs) > 0 {
		end := 1
		for end < len(srvs) && srvs[end].Priority == srvs[0].Priority {
			end++
		}
		group := srvs[:end]
		srvs = srvs[end:]
		var targets []*net.SRV
		for _, s := range group {
			if t := s.Target; t == "" || t == "." {
				continue
			}
			if _, ok := ips[s.Target]; !ok {
				addrs, err := n.resolver.IPs(ctx, s.Target)
				switch {
				case IsNotFound(err):
					n.logger.Warn("io.l5d.dnssrv: SRV target does not exist; skipped", "name", name, "target", s.Target)
				case err != nil:
					return result{err: fmt.Errorf("io.l5d.dnssrv: SRV %s: target %s: %w", name, s.Target, err)}
				}
				ips[s.Target] = addrs
			}
			if len(ips[s.Target]) > 0 {
				targets = append(targets, s)
			}
		}
		if len(targets) > 0 {
			return result{addrs: addresses(targets, ips)}
		}
	}
	return result{addrs: []naming.Address{}}
}

// addresses turns one priority group into weighted addresses: a target's
// SRV weight is shared by its IPs; duplicates add up.
func addresses(group []*net.SRV, ips map[string][]netip.Addr) []naming.Address {
	anyWeight := slices.ContainsFunc(group, func(s *net.SRV) bool { return s.Weight > 0 })
	byHostPort := map[netip.AddrPort]float64{}
	for _, s := range group {
		w := 1.0
		if anyWeight {
			w = float64(s.Weight)
			if w == 0 {
				w = zeroWeight
			}
		}
		addrs := ips[s.Target]
		for _, ip := range addrs {
			byHostPort[netip.AddrPortFrom(ip.Unmap(), s.Port)] += w / float64(len(addrs))
		}
	}
	out := make([]naming.Address, 0, len(byHostPort))
	for ap, w := range byHostPort {
		out = append(out, naming.Address{Host: ap.Addr().String(), Port: int(ap.Port()), Weight: w})
	}
	slices.SortFunc(out, func(a, b naming.Address) int {
		return cmp.Or(strings.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port))
	})
	return out
}
