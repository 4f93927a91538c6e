package serversets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/zk"
)

// AnnouncerConfig is one `announcers:` entry of a Linkerd router:
//
//	announcers:
//	- kind: io.l5d.serversets
//	  prefix: /io.l5d.serversets   # names starting /#/<prefix> are this announcer's
//	  zkAddrs: [{host: zk1, port: 2181}]
//	  pathPrefix: /discovery       # the serverset of /#/<prefix>/web is /discovery/web
//
// and a server's `announce: [/#/io.l5d.serversets/web]` joins the server's
// address to the serverset /discovery/web, as an ephemeral member_ node
// that disappears when the router stops (or its session ends).
//
// It is the naming.AnnouncerConfig of kind io.l5d.serversets: routers
// build it (StartAnnouncer), Announce each server's entries once it
// listens, and Close the announcements before the server stops accepting.
type AnnouncerConfig struct {
	Prefix           string        `yaml:"prefix"`
	ZkAddrs          []zk.HostPort `yaml:"zkAddrs"`
	PathPrefix       string        `yaml:"pathPrefix"`
	SessionTimeoutMs int           `yaml:"sessionTimeoutMs"`
}

// SetDefaults implements config.Defaulter.
func (c *AnnouncerConfig) SetDefaults() {
	c.Prefix, c.PathPrefix, c.SessionTimeoutMs = "/"+Kind, "/discovery", 10000
}

// Validate implements config.Validator.
func (c *AnnouncerConfig) Validate() error {
	if err := zk.ValidateAddrs("zkAddrs", c.ZkAddrs); err != nil {
		return err
	}
	if err := zk.ValidatePath(c.PathPrefix); err != nil {
		return config.FieldError("pathPrefix", "%v", err)
	}
	if c.SessionTimeoutMs < 1000 || c.SessionTimeoutMs > 600000 {
		return config.FieldError("sessionTimeoutMs", "%d is not a session timeout from 1000 to 600000 ms", c.SessionTimeoutMs)
	}
	if _, err := mountPrefix(c.Prefix, Kind); err != nil {
		return config.FieldError("prefix", "%v", err)
	}
	return nil
}

func init() {
	config.Register[naming.AnnouncerConfig](Kind, func() naming.AnnouncerConfig { return new(AnnouncerConfig) })
}

// MountPrefix implements naming.AnnouncerConfig: /#/<prefix>.
func (c *AnnouncerConfig) MountPrefix() dtab.Path {
	p, err := mountPrefix(c.Prefix, Kind)
	if err != nil {
		return dtab.Path{"#", Kind}
	}
	return p
}

// CheckName tells whether name, which starts with MountPrefix, names a
// serverset: routers check their servers' announce names with it when
// the config loads.
func (c *AnnouncerConfig) CheckName(name dtab.Path) error {
	for _, seg := range name[min(len(c.MountPrefix()), len(name)):] {
		if err := zk.ValidateNodeName(seg); err != nil {
			return fmt.Errorf("%s names no serverset: %v", name, err)
		}
	}
	return nil
}

// StartAnnouncer implements naming.AnnouncerConfig.
func (c *AnnouncerConfig) StartAnnouncer(log *slog.Logger) (naming.Announcer, error) {
	a, err := c.NewAnnouncer(log)
	if err != nil {
		return nil, err
	}
	return namingAnnouncer{a}, nil
}

// namingAnnouncer is an *Announcer as a naming.Announcer.
type namingAnnouncer struct{ *Announcer }

func (a namingAnnouncer) Announce(name dtab.Path, addr netip.AddrPort) (naming.Announcement, error) {
	an, err := a.Announcer.Announce(name, addr)
	if err != nil {
		return nil, err
	}
	return an, nil
}

// NewAnnouncer connects to ZooKeeper (without waiting for it, nor failing
// when it cannot: the announcements retry).
func (c *AnnouncerConfig) NewAnnouncer(log *slog.Logger) (*Announcer, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("announcer %s: %w", Kind, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prefix, _ := mountPrefix(c.Prefix, Kind)
	a := &Announcer{
		opts:       zk.Options{Servers: zk.Servers(c.ZkAddrs), SessionTimeout: time.Duration(c.SessionTimeoutMs) * time.Millisecond, Logger: log},
		prefix:     prefix,
		pathPrefix: strings.TrimSuffix(c.PathPrefix, "/"),
		log:        log,
	}
	if _, err := a.client(); err != nil {
		// Not fatal: the announcements retry (a ZooKeeper host name that
		// does not resolve yet, e.g. while cluster DNS starts).
		log.Warn("io.l5d.serversets announcer: cannot connect yet; retrying", "err", err)
	}
	return a, nil
}

// dialZK is zk.Dial (tests make it fail).
var dialZK = zk.Dial

// client returns the ZooKeeper client, dialling it if an earlier attempt
// failed (zk.Dial fails only when no server address resolves).
func (a *Announcer) client() (*zk.Client, error) {
	a.cmu.Lock()
	defer a.cmu.Unlock()
	if a.cli != nil {
		return a.cli, nil
	}
	if a.closed {
		return nil, errors.New("announcer closed")
	}
	cli, err := dialZK(a.opts)
	if err != nil {
		return nil, err
	}
	a.cli = cli
	return cli, nil
}

// Announcer joins servers to serversets.
type Announcer struct {
	opts       zk.Options
	prefix     dtab.Path // /#/<prefix>
	pathPrefix string
	log        *slog.Logger

	cmu    sync.Mutex
	cli    *zk.Client // nil until dialled
	closed bool

	mu     sync.Mutex
	active map[*Announcement]struct{}
}

// Serverset returns the znode path a server's announce entry names, and
// false when the entry is not this announcer's (it does not start with
// /#/<prefix>, or names no znode).
func (a *Announcer) Serverset(name dtab.Path) (string, bool) {
	if !name.HasPrefix(a.prefix) || len(name) == len(a.prefix) {
		return "", false
	}
	rest := name[len(a.prefix):]
	for _, seg := range rest {
		if zk.ValidateNodeName(seg) != nil {
			return "", false
		}
	}
	return a.pathPrefix + "/" + strings.Join(rest, "/"), true
}

// Announcement is one server's membership of one serverset.
type Announcement struct {
	a      *Announcer
	set    string
	data   []byte
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	node    string // the member znode, "" while not joined
	lastErr string // the last failure to join, "" once joined
}

// Announce joins addr to the serverset that name (/#/<prefix>/<path>)
// names, as an ALIVE member with shard 0, and keeps it joined: the
// member is created again if its session expires or someone deletes it.
// It returns at once; Member tells when the member exists. Close leaves.
func (a *Announcer) Announce(name dtab.Path, addr netip.AddrPort) (*Announcement, error) {
	set, ok := a.Serverset(name)
	if !ok {
		return nil, fmt.Errorf("announce %s: not a name of this announcer (%s/<serverset path>)", name, a.prefix)
	}
	if !addr.IsValid() || addr.Port() == 0 || addr.Addr().IsUnspecified() {
		return nil, fmt.Errorf("announce %s: %s is not an address others can reach", name, addr)
	}
	type ep struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	}
	data, _ := json.Marshal(struct {
		ServiceEndpoint     ep            `json:"serviceEndpoint"`
		AdditionalEndpoints map[string]ep `json:"additionalEndpoints"`
		Status              string        `json:"status"`
		Shard               int           `json:"shard"`
	}{ep{addr.Addr().Unmap().String(), int(addr.Port())}, map[string]ep{}, StatusAlive, 0})
	ctx, cancel := context.WithCancel(context.Background())
	an := &Announcement{a: a, set: set, data: data, cancel: cancel, done: make(chan struct{})}
	a.mu.Lock()
	if a.active == nil {
		a.active = map[*Announcement]struct{}{}
	}
	a.active[an] = struct{}{}
	a.mu.Unlock()
	go an.run(ctx)
	return an, nil
}

// Member returns the member znode's path while the server is joined.
func (an *Announcement) Member() (string, bool) {
	an.mu.Lock()
	defer an.mu.Unlock()
	return an.node, an.node != ""
}

func (an *Announcement) setNode(p string) {
	an.mu.Lock()
	an.node = p
	if p != "" {
		an.lastErr = ""
	}
	an.mu.Unlock()
}

// Status implements naming.Announcement.
func (an *Announcement) Status() naming.AnnouncementStatus {
	an.mu.Lock()
	defer an.mu.Unlock()
	return naming.AnnouncementStatus{Announced: an.node != "", Target: an.set, Entry: an.node, Err: an.lastErr}
}

// run joins, then watches the member node and joins again when it goes.
func (an *Announcement) run(ctx context.Context) {
	defer close(an.done)
	log := an.a.log
	const minPause, maxPause = 100 * time.Millisecond, 5 * time.Second
	pause := minPause
	for ctx.Err() == nil {
		err := an.join(ctx)
		if err == nil {
			pause = minPause
			continue
		}
		if ctx.Err() != nil {
			return
		}
		an.mu.Lock()
		an.lastErr = err.Error()
		an.mu.Unlock()
		log.Warn("io.l5d.serversets announcer: cannot join; retrying", "serverset", an.set, "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}

// join creates the member (and the serverset's znodes) and returns when
// the member is gone (nil) or a request failed.
func (an *Announcement) join(ctx context.Context) error {
	cli, err := an.a.client()
	if err != nil {
		return err
	}
	node, err := cli.Create(ctx, an.set+"/"+MemberPrefix, an.data, gozk.FlagEphemeral|gozk.FlagSequence, gozk.WorldACL(gozk.PermAll))
	if errors.Is(err, gozk.ErrNoNode) {
		if err := cli.CreateAll(ctx, an.set, gozk.WorldACL(gozk.PermAll)); err != nil {
			return err
		}
		node, err = cli.Create(ctx, an.set+"/"+MemberPrefix, an.data, gozk.FlagEphemeral|gozk.FlagSequence, gozk.WorldACL(gozk.PermAll))
	}
	if err != nil {
		return err
	}
	an.setNode(node) // kept when ctx ends: Close deletes it
	an.a.log.Info("io.l5d.serversets announcer: joined", "serverset", an.set, "member", node)
	for {
		exists, w, err := cli.ExistsW(ctx, node)
		if err != nil {
			return err
		}
		if !exists {
			an.setNode("")
			return nil // deleted, or its session expired: join again
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w:
		}
	}
}

// Close leaves the serverset: the member node is deleted (within 5 s;
// else it goes with the session). It is idempotent.
func (an *Announcement) Close() error {
	an.cancel()
	<-an.done
	an.a.mu.Lock()
	delete(an.a.active, an)
	an.a.mu.Unlock()
	node, joined := an.Member()
	if !joined {
		return nil
	}
	an.setNode("")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cli, err := an.a.client() // dialled: it created the node
	if err != nil {
		return nil
	}
	if err := cli.Delete(ctx, node, -1); err != nil && !errors.Is(err, gozk.ErrNoNode) {
		return fmt.Errorf("leaving %s: %w", an.set, err)
	}
	return nil
}

// Close leaves every serverset (all at once, so that a ZooKeeper outage
// costs one request timeout, not one per member) and ends the session
// (ephemeral members go with it). It is idempotent.
func (a *Announcer) Close() error {
	a.mu.Lock()
	var all []*Announcement
	for an := range a.active {
		all = append(all, an)
	}
	a.mu.Unlock()
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, an := range all {
		wg.Go(func() { errs[i] = an.Close() })
	}
	wg.Wait()
	a.cmu.Lock()
	a.closed = true
	cli := a.cli
	a.cmu.Unlock()
	if cli != nil {
		cli.Close()
	}
	return errors.Join(errs...)
}
