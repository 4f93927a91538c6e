package routerd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// A router's `announcers:` and its servers' `announce:` (spec config.md
// §4.1, §6.1), as Linkerd's Main does them:
//
//	routers:
//	- protocol: http
//	  announcers:
//	  - kind: io.l5d.serversets
//	    zkAddrs: [{host: 127.0.0.1, port: 2181}]
//	  servers:
//	  - port: 4140
//	    announce: [/#/io.l5d.serversets/web]
//
// Each announce name goes to every announcer of the router whose prefix
// (/#/<prefix>) it starts with; a name no announcer takes is a config
// error (Linkerd only logged it, and the server silently stayed out of
// its registry). A server on 0.0.0.0 or :: is announced at each address
// of the host's up interfaces other than loopback and link-local (as
// Linkerd's InetSocketAddresses.listeningOn), never at the unspecified
// address. Announcing starts once the servers listen and never holds up
// the start: a registry that is down is retried in the background (the
// log and /admin/announcer say so). Stop withdraws every announcement
// before the servers stop accepting, so that clients stop choosing this
// router first.

func init() {
	// Linkerd 1.x has only io.l5d.serversets, which the ZooKeeper plug-ins
	// register (internal/plugins/cluster.go); a slim build refuses it.
	config.RegisterUnsupported[naming.AnnouncerConfig]("io.l5d.serversets")
}

// announceErrors checks routers[i]'s announce names against its
// announcers (called from Config.Validate).
func announceErrors(i int, r Router) config.Errors {
	var prefixes []dtab.Path
	var checkers []nameChecker
	for _, a := range r.Common().Announcers {
		prefixes = append(prefixes, a.Value.MountPrefix())
		c, _ := a.Value.(nameChecker)
		checkers = append(checkers, c)
	}
	var errs config.Errors
	for j, s := range r.ServerList() {
		for k, name := range s.Announce {
			field := fmt.Sprintf("routers[%d].servers[%d].announce[%d]", i, j, k)
			matched := false
			for a, p := range prefixes {
				if !name.Path.HasPrefix(p) {
					continue
				}
				matched = true
				if len(name.Path) == len(p) {
					errs = append(errs, &config.Error{Path: field, Msg: fmt.Sprintf("%s is only the announcer's prefix; add the name to announce below it (%s/<name>)", name.Text, p)})
				} else if c := checkers[a]; c != nil {
					if err := c.CheckName(name.Path); err != nil {
						errs = append(errs, &config.Error{Path: field, Msg: err.Error()})
					}
				}
			}
			if matched {
				continue
			}
			have := "the router has no `announcers`"
			if len(prefixes) > 0 {
				var ps []string
				for _, p := range prefixes {
					ps = append(ps, p.String())
				}
				have = "the router's announcers take names below " + strings.Join(ps, ", ")
			}
			errs = append(errs, &config.Error{Path: field, Msg: fmt.Sprintf("%s matches no announcer's prefix (%s); an announce name is /#/<announcer prefix>/<name>, e.g. /#/io.l5d.serversets/web", name.Text, have)})
		}
	}
	return errs
}

// nameChecker is implemented by announcer configs that can tell, at
// load, whether a name below their prefix is one they can announce.
type nameChecker interface {
	CheckName(name dtab.Path) error
}

// announcements is a process's announcers and what they announce.
type announcements struct {
	log       *slog.Logger
	announcer []*runningAnnouncer
	pending   []pendingAnnouncement // planned at start, made by announce

	mu        sync.Mutex
	made      []*announcement
	withdrawn bool
	closeOnce sync.Once
}

type runningAnnouncer struct {
	router, kind string
	prefix       dtab.Path
	a            naming.Announcer
}

type pendingAnnouncement struct {
	to     *runningAnnouncer
	server string // the listener address
	name   dtab.Path
	addr   netip.AddrPort
}

type announcement struct {
	pendingAnnouncement
	an naming.Announcement
}

// startAnnouncers builds the routers' announcers and plans what each
// server announces. It runs once every router listens: p.servers holds
// one listener per configured server, routers and servers in config
// order, each named "<router label> <address>" (checked: a router type
// that broke this would be refused at start, not announce another's
// address).
func (p *Process) startAnnouncers(cfg *Config) error {
	ann := &announcements{log: p.log}
	p.ann = ann
	p.closers = append(p.closers, ann.close)
	k := 0
	for i, rc := range cfg.Routers {
		common := rc.Value.Common()
		var mine []*runningAnnouncer
		for j, ac := range common.Announcers {
			log := p.log.With("router", common.Label, "announcer", ac.Kind)
			a, err := ac.Value.StartAnnouncer(log)
			if err != nil {
				return fmt.Errorf("routers[%d] (%s): announcers[%d] (%s): %w", i, common.Label, j, ac.Kind, err)
			}
			ra := &runningAnnouncer{router: common.Label, kind: ac.Kind, prefix: ac.Value.MountPrefix(), a: a}
			ann.announcer = append(ann.announcer, ra)
			mine = append(mine, ra)
		}
		for j, s := range rc.Value.ServerList() {
			if k >= len(p.servers) {
				return fmt.Errorf("routers[%d] (%s): servers[%d]: no listener (internal error)", i, common.Label, j)
			}
			l := p.servers[k]
			k++
			if !strings.HasPrefix(l.name, common.Label+" ") {
				return fmt.Errorf("routers[%d] (%s): servers[%d]: listener %q is another router's (internal error)", i, common.Label, j, l.name)
			}
			if len(s.Announce) == 0 {
				continue
			}
			tcp, ok := l.ln.Addr().(*net.TCPAddr)
			if !ok {
				return fmt.Errorf("routers[%d] (%s): servers[%d]: cannot announce a %s listener", i, common.Label, j, l.ln.Addr().Network())
			}
			addrs, fellBack := announceAddrs(s.IP, tcp.AddrPort(), interfaceAddrs)
			if fellBack {
				p.log.Warn("server listens on all addresses but the host has no address other than loopback: announcing loopback", "router", common.Label, "server", l.ln.Addr().String())
			}
			for _, name := range s.Announce {
				for _, ra := range mine {
					if !name.Path.HasPrefix(ra.prefix) {
						continue
					}
					for _, addr := range addrs {
						ann.pending = append(ann.pending, pendingAnnouncement{to: ra, server: l.ln.Addr().String(), name: name.Path, addr: addr})
					}
				}
			}
		}
	}
	if k != len(p.servers) {
		return fmt.Errorf("%d listeners for %d configured servers (internal error)", len(p.servers), k)
	}
	return nil
}

// announce makes the planned announcements. Each returns at once; the
// announcers keep them up in the background.
func (a *announcements) announce() error {
	for _, pa := range a.pending {
		an, err := pa.to.a.Announce(pa.name, pa.addr)
		if err != nil {
			return fmt.Errorf("router %s: announce %s: %w", pa.to.router, pa.name, err)
		}
		a.log.Info("announcing", "router", pa.to.router, "addr", pa.addr.String(), "name", pa.name.String(), "announcer", pa.to.kind)
		a.mu.Lock()
		a.made = append(a.made, &announcement{pendingAnnouncement: pa, an: an})
		a.mu.Unlock()
	}
	a.pending = nil
	return nil
}

// withdraw closes every announcement, all at once, waiting at most
// until ctx ends (a registry that is down cannot be told; its sessions
// expire without us).
func (a *announcements) withdraw(ctx context.Context) {
	if a == nil {
		return
	}
	a.mu.Lock()
	made := a.made
	a.withdrawn = true
	a.mu.Unlock()
	if len(made) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, m := range made {
		wg.Go(func() {
			if err := m.an.Close(); err != nil {
				a.log.Warn("withdrawing announcement", "router", m.to.router, "name", m.name.String(), "addr", m.addr.String(), "err", err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		a.log.Info("announcements withdrawn", "count", len(made))
	case <-ctx.Done():
		a.log.Warn("announcements not all withdrawn in time; the registry drops them when the session ends", "count", len(made))
	}
}

// close ends the announcers (their sessions: what was not withdrawn goes
// with them).
func (a *announcements) close() error {
	a.closeOnce.Do(func() {
		a.withdraw(context.Background()) // each Close is bounded by its announcer
		for _, ra := range a.announcer {
			if err := ra.a.Close(); err != nil {
				a.log.Warn("closing announcer", "router", ra.router, "announcer", ra.kind, "err", err)
			}
		}
	})
	return nil
}

// announcementState is one entry of /admin/announcer.
type announcementState struct {
	Router    string `json:"router"`
	Server    string `json:"server"`
	Name      string `json:"name"`
	Announcer string `json:"announcer"`
	Address   string `json:"address"`
	// State is "announced", "pending" (the registry does not hold it yet:
	// Error says why, when known) or "withdrawn".
	State  string `json:"state"`
	Target string `json:"target,omitempty"`
	Entry  string `json:"entry,omitempty"`
	Error  string `json:"error,omitempty"`
}

// state is /admin/announcer: every announcement and where it stands.
func (a *announcements) state() []announcementState {
	a.mu.Lock()
	made, withdrawn := slices.Clone(a.made), a.withdrawn
	a.mu.Unlock()
	out := make([]announcementState, 0, len(made))
	for _, m := range made {
		st := m.an.Status()
		s := announcementState{Router: m.to.router, Server: m.server, Name: m.name.String(), Announcer: m.to.kind,
			Address: m.addr.String(), State: "pending", Target: st.Target, Entry: st.Entry, Error: st.Err}
		switch {
		case st.Announced:
			s.State = "announced"
		case withdrawn:
			s.State = "withdrawn"
		}
		out = append(out, s)
	}
	return out
}

// mountAnnouncerPage serves /admin/announcer (and .json) as JSON.
func mountAnnouncerPage(adm *admin.Server, a *announcements) {
	if a == nil {
		return
	}
	h := admin.JSONState(func() any { return a.state() })
	adm.Handle("/admin/announcer", h)
	adm.Handle("/admin/announcer.json", h)
}

// announceAddrs returns the addresses to announce for a server configured
// with ip that listens at bound. An unspecified ip (0.0.0.0, ::) becomes
// the host's addresses (ifaddrs), IPv4 ones only for 0.0.0.0, without
// loopback and link-local ones; if that leaves none, loopback (fellBack).
func announceAddrs(ip string, bound netip.AddrPort, ifaddrs func() []netip.Addr) (out []netip.AddrPort, fellBack bool) {
	cfg, err := netip.ParseAddr(ip)
	if err != nil || !cfg.IsUnspecified() {
		a := bound.Addr().Unmap()
		if err == nil {
			a = cfg.Unmap()
		}
		return []netip.AddrPort{netip.AddrPortFrom(a, bound.Port())}, false
	}
	v4only := cfg.Is4()
	for _, a := range ifaddrs() {
		a = a.Unmap()
		if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() || v4only && !a.Is4() {
			continue
		}
		out = append(out, netip.AddrPortFrom(a.WithZone(""), bound.Port()))
	}
	if len(out) == 0 {
		lo := netip.IPv6Loopback()
		if v4only {
			lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		return []netip.AddrPort{netip.AddrPortFrom(lo, bound.Port())}, true
	}
	slices.SortFunc(out, func(x, y netip.AddrPort) int { return x.Compare(y) })
	return slices.Compact(out), false
}

// interfaceAddrs lists the addresses of the host's up interfaces.
func interfaceAddrs() []netip.Addr {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					out = append(out, ip)
				}
			}
		}
	}
	return out
}
