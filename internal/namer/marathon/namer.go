package marathon

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Options configure New.
type Options struct {
	// Prefix is the path bound ids start with (default /#/io.l5d.marathon).
	Prefix dtab.Path
	// BaseURL is Marathon's address and URI prefix, e.g.
	// http://marathon.mesos:80/marathon; the API paths /v2/... follow it.
	BaseURL string
	// Host, when set, is the Host header of every request (Linkerd sends
	// the configured host, without the port).
	Host string
	// TLS, when set, is the client configuration of an https BaseURL.
	TLS *tls.Config
	// TTL is the polling interval of the app list and of each watched app
	// (default 5s).
	TTL time.Duration
	// UseHealthCheck keeps only tasks whose health checks all pass.
	UseHealthCheck bool
	// ServiceAccount, when set, logs in to DC/OS and sends its token.
	ServiceAccount *ServiceAccount
	// BasicCredential, when set (and ServiceAccount is not), is sent as
	// "Authorization: Basic <BasicCredential>".
	BasicCredential string
	// Timeout bounds one request to Marathon (default 10s).
	Timeout time.Duration
	// Resolver resolves task hosts that are names (default
	// net.DefaultResolver).
	Resolver Resolver
}

// Resolver resolves host names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Namer is the io.l5d.marathon namer. It is safe for concurrent use; Close
// (or cancelling the Env's context) stops every poll.
type Namer struct {
	o      Options
	api    *api
	tr     *http.Transport
	logger *slog.Logger

	polls    *telemetry.Counter
	failures *telemetry.Counter

	loops    naming.Loops
	listLoop naming.SharedLoop // polls the app list while any lookup is watched

	mu      sync.Mutex
	list    appList             // the last app list
	entries map[*entry]struct{} // watched lookups
	paths   map[string]*entry   // watched lookups, shared by path
	apps    map[string]*app     // watched apps, by id
	listErr string              // the app list's current failure, for the state page
}

// appList is what the namer knows of Marathon's app ids.
type appList struct {
	ok  bool
	ids map[string]dtab.Path // by id ("a/b")
	err error                // with !ok: why there is no list (nil: not asked yet)
	at  time.Time            // when the running list loop last confirmed it
}

// New returns a namer asking Marathon at o.BaseURL. Nothing is asked until
// a lookup is watched.
func New(env naming.Env, o Options) (*Namer, error) {
	if len(o.Prefix) == 0 {
		o.Prefix = dtab.Path{"#", Kind}
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTLMs * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	base, err := url.Parse(o.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%s: %q is not an http(s) URL", Kind, o.BaseURL)
	}
	tr := &http.Transport{
		Proxy:               nil, // Marathon is asked directly, never through $HTTP_PROXY
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     o.TLS,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   o.TLS != nil,
	}
	client := &http.Client{Transport: tr, Timeout: o.Timeout}
	a := &api{base: strings.TrimSuffix(o.BaseURL, "/"), host: o.Host, client: client, timeout: o.Timeout}
	if acct := o.ServiceAccount; acct != nil {
		ts := &tokenSource{acct: acct, url: acct.LoginEndpoint, client: client, timeout: o.Timeout}
		if strings.HasPrefix(acct.LoginEndpoint, "/") { // a path on Marathon's host
			ts.url = base.Scheme + "://" + base.Host + acct.LoginEndpoint
			ts.host = o.Host
		}
		a.tokens = ts
	} else {
		a.basic = o.BasicCredential
	}
	n := &Namer{
		o:       o,
		api:     a,
		tr:      tr,
		logger:  env.Logger,
		entries: map[*entry]struct{}{},
		paths:   map[string]*entry{},
		apps:    map[string]*app{},
	}
	if n.logger == nil {
		n.logger = slog.New(slog.DiscardHandler)
	}
	n.polls = env.Scope.Counter("lookups")
	n.failures = env.Scope.Counter("failures")
	ctx := env.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	n.loops.Init(ctx)
	return n, nil
}

// Close stops every poll and waits for them to end. Lookups keep their
// last answers.
func (n *Namer) Close() error {
	n.loops.Close()
	n.tr.CloseIdleConnections()
	return nil
}

// Watching returns how many lookups and apps are being watched (for leak
// tests).
func (n *Namer) Watching() (lookups, apps int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.entries), len(n.apps)
}

// Lookup implements naming.Namer. The path is an app id followed by a
// residual: /#/io.l5d.marathon/group/app/rest binds the app /group/app
// (the shortest prefix of the lower-cased path that is an app id, as
// Linkerd does; Marathon forbids an app id that is a prefix of another,
// so there is never more than one) with residual /rest. The answer is
// pending until Marathon first answers, negative when no prefix is an
// app or the app has no (healthy, with useHealthCheck) running task, and
// a leaf bound to /#/<prefix>/<app id> otherwise. The app list and the
// app are polled every TTL only while the answer or the bound name's
// addresses are watched.
func (n *Namer) Lookup(path dtab.Path) naming.Lookup {
	if len(path) == 0 {
		return watch.Const[watch.Activity[dtab.Tree[naming.Name]]]{V: watch.OkActivity(dtab.NegTree[naming.Name]())}
	}
	key := path.String()
	n.mu.Lock()
	e := n.paths[key]
	n.mu.Unlock()
	if e == nil {
		lower := make(dtab.Path, len(path))
		for i, s := range path {
			lower[i] = strings.ToLower(s)
		}
		e = &entry{
			n:     n,
			key:   key,
			path:  slices.Clone(path),
			lower: lower,
			tree:  watch.NewVar(watch.PendingActivity[dtab.Tree[naming.Name]]()),
		}
	}
	return lookup{e}
}

// lookup is the answer of one Lookup; subscribing holds its entry.
type lookup struct{ e *entry }

// Get implements watch.Value: the last known answer (pending until the
// path has been resolved while watched).
func (l lookup) Get() watch.Activity[dtab.Tree[naming.Name]] { return l.e.tree.Get() }

// Subscribe implements watch.Value.
func (l lookup) Subscribe(f func(watch.Activity[dtab.Tree[naming.Name]])) func() {
	l.e.hold()
	cancel := l.e.tree.Subscribe(f)
	var once sync.Once
	return func() { once.Do(func() { cancel(); l.e.unhold() }) }
}

// entry is one watched lookup path: which app it matches and its answer.
type entry struct {
	n     *Namer
	key   string    // path.String()
	path  dtab.Path // as looked up (the residual keeps its case)
	lower dtab.Path // lower-cased, matched against app ids
	tree  *watch.Var[watch.Activity[dtab.Tree[naming.Name]]]

	holdMu sync.Mutex // serialises hold and unhold, so a path unwatched and watched again at once ends active
	subs   int        // holders (under holdMu)

	pubMu  sync.Mutex // serialises matching and publishing
	active bool
	app    *app          // the matched app (nil: none, or no app list yet)
	bound  *naming.Bound // its bound name, stable while the match lasts
	mode   entryMode
	err    error // with modeFailed
	shown  shape // what tree holds
}

type entryMode uint8

const (
	modePending entryMode = iota // no app list yet
	modeFailed                   // the app list could never be read
	modeNeg                      // no prefix is an app
	modeApp                      // matches app
)

// shape is what distinguishes two answers of an entry.
type shape struct {
	state watch.State
	kind  dtab.Kind
	bound *naming.Bound
	err   string
}

// hold counts a subscriber; the first one registers the entry for the app
// list's rematches, holds the app list's poll and publishes an answer.
func (e *entry) hold() {
	e.holdMu.Lock()
	defer e.holdMu.Unlock()
	e.subs++
	if e.subs != 1 {
		return
	}
	n := e.n
	n.mu.Lock()
	n.entries[e] = struct{}{}
	if n.paths[e.key] == nil {
		n.paths[e.key] = e
	}
	n.mu.Unlock()
	n.listLoop.Acquire(&n.loops, n.pollList)
	e.pubMu.Lock()
	e.active = true
	e.pubMu.Unlock()
	e.rematch()
}

// unhold undoes hold; the last one lets go of the entry's app and of the
// app list's poll.
func (e *entry) unhold() {
	e.holdMu.Lock()
	defer e.holdMu.Unlock()
	e.subs--
	if e.subs != 0 {
		return
	}
	n := e.n
	n.mu.Lock()
	delete(n.entries, e)
	if n.paths[e.key] == e {
		delete(n.paths, e.key)
	}
	n.mu.Unlock()
	e.pubMu.Lock()
	e.active = false
	old := e.app
	e.app, e.bound = nil, nil
	e.pubMu.Unlock()
	if old != nil {
		old.removeUser(e)
		old.Unhold()
	}
	n.listLoop.Release()
}

// rematch finds the entry's app in the current app list, moving its hold
// when the match changes, and publishes the answer.
func (e *entry) rematch() {
	n := e.n
	n.mu.Lock()
	l := n.list
	n.mu.Unlock()
	if (l.ok || l.err != nil) && time.Since(l.at) > 2*n.o.TTL+n.o.Timeout {
		// Left from an earlier watch (the loop confirms it every poll
		// while it runs, even when Marathon fails): wait for a fresh one.
		l = appList{}
	}
	e.pubMu.Lock()
	defer e.pubMu.Unlock()
	if !e.active {
		return
	}
	var id dtab.Path
	switch {
	case l.ok:
		e.mode, e.err = modeNeg, nil
		for i := 1; i <= len(e.lower); i++ {
			if p, ok := l.ids[strings.Join(e.lower[:i], "/")]; ok {
				id, e.mode = p, modeApp
				break
			}
		}
	case l.err != nil:
		e.mode, e.err = modeFailed, l.err
	default:
		e.mode = modePending
	}
	if e.app == nil || !slices.Equal(e.app.id, id) {
		old := e.app
		e.app, e.bound = nil, nil
		if id != nil {
			a := n.holdApp(id)
			a.addUser(e)
			e.app = a
			e.bound = &naming.Bound{ID: a.bound, Residual: slices.Clone(e.path[len(id):]), Addr: naming.WatchedAddr(a, a.addr)}
		}
		if old != nil {
			old.removeUser(e)
			old.Unhold()
		}
	}
	e.publishLocked()
}

// publish republishes the answer after the matched app's addresses
// changed.
func (e *entry) publish(a *app) {
	e.pubMu.Lock()
	defer e.pubMu.Unlock()
	if e.active && e.app == a {
		e.publishLocked()
	}
}

func (e *entry) publishLocked() {
	var act watch.Activity[dtab.Tree[naming.Name]]
	switch e.mode {
	case modePending:
		act = watch.PendingActivity[dtab.Tree[naming.Name]]()
	case modeFailed:
		act = watch.FailedActivity[dtab.Tree[naming.Name]](e.err)
	case modeNeg:
		act = watch.OkActivity(dtab.NegTree[naming.Name]())
	case modeApp:
		switch a := e.app.addr.Get(); a.State {
		case naming.AddrBound:
			act = watch.OkActivity(dtab.LeafTree(naming.Name{Bound: e.bound}))
		case naming.AddrNeg:
			act = watch.OkActivity(dtab.NegTree[naming.Name]())
		case naming.AddrFailed:
			act = watch.FailedActivity[dtab.Tree[naming.Name]](a.Err)
		default:
			act = watch.PendingActivity[dtab.Tree[naming.Name]]()
		}
	}
	s := shape{state: act.State, kind: act.Value.Kind}
	if act.State == watch.Failed {
		s.err = act.Err.Error()
	}
	if act.State == watch.Ok && act.Value.Kind == dtab.Leaf {
		s.bound = e.bound
	}
	if s != e.shown {
		e.shown = s
		e.tree.Set(act)
	}
}

// pollList polls GET /v2/apps every TTL until ctx ends, rematching every
// watched lookup after each answer.
func (n *Namer) pollList(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		n.polls.Inc()
		ids, err := n.api.appIDs(ctx)
		if !n.applyList(ctx, ids, err) {
			return
		}
		timer.Reset(n.o.TTL)
	}
}

// applyList records an app list answer (a failure keeps the last list)
// and rematches the watched lookups; false when the loop has stopped.
func (n *Namer) applyList(ctx context.Context, ids []dtab.Path, err error) bool {
	n.mu.Lock()
	if ctx.Err() != nil {
		n.mu.Unlock()
		return false
	}
	now := time.Now()
	if err != nil {
		n.failures.Inc()
		if msg := err.Error(); msg != n.listErr {
			n.listErr = msg
			if n.list.ok {
				n.logger.Warn(Kind+": cannot read the app list; keeping the last one", "err", err)
			} else {
				n.logger.Warn(Kind+": cannot read the app list", "err", err)
			}
		}
		if n.list.ok {
			n.list.at = now // still the best known, while the loop runs
		} else {
			n.list = appList{err: fmt.Errorf("%s: %w", Kind, err), at: now}
		}
	} else {
		if n.listErr != "" {
			n.logger.Info(Kind + ": reading the app list again")
			n.listErr = ""
		}
		m := make(map[string]dtab.Path, len(ids))
		for _, id := range ids {
			m[strings.Join(id, "/")] = id
		}
		n.list = appList{ok: true, ids: m, at: now}
	}
	entries := make([]*entry, 0, len(n.entries))
	for e := range n.entries {
		entries = append(entries, e)
	}
	n.mu.Unlock()
	for _, e := range entries {
		e.rematch()
	}
	return true
}

// holdApp holds the watched app id, creating it if needed.
func (n *Namer) holdApp(id dtab.Path) *app {
	key := strings.Join(id, "/")
	n.mu.Lock()
	a := n.apps[key]
	if a == nil {
		a = &app{
			n:     n,
			key:   key,
			id:    id,
			bound: n.o.Prefix.Concat(id),
			addr:  watch.NewVar(naming.Addr{State: naming.AddrPending}),
			users: map[*entry]struct{}{},
		}
	}
	n.mu.Unlock()
	a.Hold()
	return a
}

// app is one watched Marathon app: its address set, shared by every
// lookup matching it and every watcher of its bound name.
type app struct {
	n     *Namer
	key   string
	id    dtab.Path
	bound dtab.Path // /#/<prefix>/<id>
	addr  *watch.Var[naming.Addr]

	loop naming.SharedLoop

	usersMu sync.Mutex
	users   map[*entry]struct{} // lookups matching the app

	pubMu   sync.Mutex // serialises apply
	lastErr string     // the current failure ("" when none), under pubMu

	errMu    sync.Mutex
	shownErr string // lastErr for the state page
}

// Hold counts a holder; the first one starts the app's poll and makes it
// the entry later lookups share.
func (a *app) Hold() { naming.HoldIn(&a.loop, &a.n.loops, a.poll, &a.n.mu, a.n.apps, a.key, a) }

// Unhold undoes Hold; the last one stops the poll and forgets the app.
func (a *app) Unhold() { naming.UnholdIn(&a.loop, &a.n.mu, a.n.apps, a.key, a) }

func (a *app) addUser(e *entry) {
	a.usersMu.Lock()
	a.users[e] = struct{}{}
	a.usersMu.Unlock()
}

func (a *app) removeUser(e *entry) {
	a.usersMu.Lock()
	delete(a.users, e)
	a.usersMu.Unlock()
}

func (a *app) poll(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		a.n.polls.Inc()
		addrs, err := a.n.fetch(ctx, a.id)
		if !a.apply(ctx, addrs, err) {
			return
		}
		timer.Reset(a.n.o.TTL)
	}
}

// fetch asks for the app's tasks and resolves their hosts. An app that
// does not exist has no address (nil, nil).
func (n *Namer) fetch(ctx context.Context, id dtab.Path) ([]naming.Address, error) {
	eps, err := n.api.appEndpoints(ctx, id, n.o.UseHealthCheck)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	ips := map[string][]netip.Addr{}
	seen := map[netip.AddrPort]bool{}
	out := make([]naming.Address, 0, len(eps))
	for _, ep := range eps {
		addrs, ok := ips[ep.Host]
		if !ok {
			if ip, err := netip.ParseAddr(ep.Host); err == nil {
				addrs = []netip.Addr{ip.Unmap()}
			} else {
				addrs, err = n.o.Resolver.LookupNetIP(ctx, "ip", ep.Host)
				var dnsErr *net.DNSError
				switch {
				case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
					n.logger.Warn(Kind+": task host does not resolve; skipped", "app", "/"+strings.Join(id, "/"), "host", ep.Host)
					addrs = nil
				case err != nil:
					return nil, fmt.Errorf("resolving task host %s of app /%s: %w", ep.Host, strings.Join(id, "/"), err)
				}
			}
			ips[ep.Host] = addrs
		}
		for _, ip := range addrs {
			ap := netip.AddrPortFrom(ip.Unmap(), uint16(ep.Port))
			if !seen[ap] {
				seen[ap] = true
				out = append(out, naming.Address{Host: ap.Addr().String(), Port: ep.Port, Weight: 1})
			}
		}
	}
	slices.SortFunc(out, func(x, y naming.Address) int {
		return cmp.Or(strings.Compare(x.Host, y.Host), cmp.Compare(x.Port, y.Port))
	})
	return out, nil
}

// apply publishes a poll's outcome: a failure keeps the last answer (and
// is the answer only when there was none); an app with no address is
// negative (as with Linkerd, so dtab fall-backs apply). False when the
// loop has stopped.
func (a *app) apply(ctx context.Context, addrs []naming.Address, err error) bool {
	a.pubMu.Lock()
	if ctx.Err() != nil {
		a.pubMu.Unlock()
		return false
	}
	log := a.n.logger
	old := a.addr.Get()
	var next *naming.Addr
	switch {
	case err != nil:
		a.n.failures.Inc()
		err = fmt.Errorf("%s: app /%s: %w", Kind, strings.Join(a.id, "/"), err)
		if msg := err.Error(); msg != a.lastErr {
			a.lastErr = msg
			if old.State == naming.AddrBound || old.State == naming.AddrNeg {
				log.Warn(Kind+": cannot read the app; keeping its last addresses", "app", "/"+strings.Join(a.id, "/"), "err", err)
			} else {
				log.Warn(Kind+": cannot read the app", "app", "/"+strings.Join(a.id, "/"), "err", err)
			}
			if old.State == naming.AddrPending || old.State == naming.AddrFailed {
				next = &naming.Addr{State: naming.AddrFailed, Err: err}
			}
		}
	case len(addrs) == 0:
		if old.State != naming.AddrNeg {
			next = &naming.Addr{State: naming.AddrNeg}
		}
	default:
		na := naming.Addr{State: naming.AddrBound, Addrs: addrs}
		if !naming.AddrEqual(old, na) {
			next = &na
		}
	}
	if err == nil && a.lastErr != "" {
		log.Info(Kind+": reading the app again", "app", "/"+strings.Join(a.id, "/"))
		a.lastErr = ""
	}
	a.errMu.Lock()
	a.shownErr = a.lastErr
	a.errMu.Unlock()
	if next != nil {
		a.addr.Set(*next)
	}
	a.pubMu.Unlock()
	if next != nil {
		a.usersMu.Lock()
		users := make([]*entry, 0, len(a.users))
		for e := range a.users {
			users = append(users, e)
		}
		a.usersMu.Unlock()
		for _, e := range users {
			e.publish(a)
		}
	}
	return true
}
