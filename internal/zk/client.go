// Package zk is the ZooKeeper client Linnet's ZooKeeper plug-ins share
// (the io.l5d.zk dtab store, the io.l5d.serversets and io.l5d.zkLeader
// namers): the configuration blocks Linkerd 1.x uses for them (zkAddrs,
// authInfo, acls with "crwda" permissions) and a Client over
// github.com/go-zookeeper/zk whose requests are bounded in time.
//
// The underlying connection reconnects by itself and keeps its session
// (and so its watches and ephemeral nodes) across a reconnection within the
// session timeout; when the session expires it opens a new one and every
// outstanding watch ends with an EventNotWatching event. Client adds:
//
//   - Requests wait for a live session (and for authInfo to be accepted)
//     only as long as their context allows, then fail, instead of queueing
//     while ZooKeeper is unreachable. A write that timed out may still have
//     been applied, as with any ZooKeeper client (connection loss).
//   - The connection state is observable (Status, Changed) so that callers
//     can show why they serve stale data.
//
// ChildrenWatch, on top of Client, follows a znode's children and their
// data (the namers' serversets and Curator services).
package zk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gozk "github.com/go-zookeeper/zk"
)

// Errors of the ZooKeeper protocol callers test with errors.Is.
var (
	ErrNoNode     = gozk.ErrNoNode
	ErrNodeExists = gozk.ErrNodeExists
	ErrBadVersion = gozk.ErrBadVersion
	ErrNotEmpty   = gozk.ErrNotEmpty
	ErrNoAuth     = gozk.ErrNoAuth
)

// Options configure Dial.
type Options struct {
	// Servers are "host:port" addresses of the ensemble.
	Servers []string
	// SessionTimeout is the session timeout asked of the server (default 10s).
	SessionTimeout time.Duration
	// RequestTimeout bounds each request, including the wait for a session
	// (default 5s); a shorter context deadline wins.
	RequestTimeout time.Duration
	// Auth, when set, is added to every session before any request runs.
	Auth   *AuthInfo
	Logger *slog.Logger
}

// Client is a ZooKeeper session shared by one plug-in instance. All
// methods are safe for concurrent use.
type Client struct {
	servers    []string
	serverList string
	sessionTTL time.Duration
	timeout    time.Duration
	resetAfter time.Duration
	log        *slog.Logger
	auth       *AuthInfo

	mu       sync.Mutex
	conn     *gozk.Conn // the current connection (generation gen)
	gen      int
	state    gozk.State
	authed   bool // Auth accepted on the current connection
	changed  chan struct{}
	session  int64
	sessions int // sessions established so far
	lastErr  string
	closed   bool
	// dialErr is the library's last "failed to connect to ..." of the
	// current connection (a connErr), cleared by a session: it says why
	// there is no session (connection refused, no route) better than
	// "disconnected". Set from the library's logger without c.mu.
	dialErr atomic.Pointer[connErr]

	wmu       sync.Mutex
	watches   map[watchKey]*sharedWatch
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// Dial starts connecting to the ensemble and returns at once: requests
// wait (within their deadline) for the session.
func Dial(o Options) (*Client, error) {
	if len(o.Servers) == 0 {
		return nil, errors.New("zookeeper: no servers")
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 10 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		servers:    o.Servers,
		serverList: strings.Join(o.Servers, ","),
		sessionTTL: o.SessionTimeout,
		timeout:    o.RequestTimeout,
		resetAfter: max(o.SessionTimeout, 2*time.Second),
		log:        o.Logger,
		auth:       o.Auth,
		state:      gozk.StateDisconnected,
		changed:    make(chan struct{}),
		lastErr:    "not connected yet",
		watches:    map[watchKey]*sharedWatch{},
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	if err := c.dial(); err != nil {
		return nil, err
	}
	go c.keep()
	return c, nil
}

// dial starts a new connection and makes it the current one.
func (c *Client) dial() error {
	c.mu.Lock()
	c.gen++
	gen := c.gen
	c.state, c.authed = gozk.StateDisconnected, false
	c.mu.Unlock()
	conn, events, err := gozk.Connect(c.servers, c.sessionTTL,
		gozk.WithLogger(slogPrintf{l: c.log, note: func(msg string) { c.noteLog(gen, msg) }}),
		gozk.WithLogInfo(false),
		gozk.WithEventCallback(func(ev gozk.Event) { c.onEvent(gen, ev) }),
	)
	if err != nil {
		return fmt.Errorf("zookeeper %s: %w", c.serverList, err)
	}
	go func() { // the library drops events nobody reads; read them anyway
		for range events {
		}
	}()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil
	}
	c.conn = conn
	if c.state == gozk.StateHasSession { // connected before Connect returned
		c.countSessionLocked()
	}
	c.notifyLocked()
	return nil
}

func (c *Client) countSessionLocked() {
	if id := c.conn.SessionID(); id != c.session {
		c.session = id
		c.sessions++
	}
}

func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// cur returns the current connection.
func (c *Client) cur() *gozk.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// slogPrintf is the library's logger: its lines go to the debug log,
// and each is shown to note.
type slogPrintf struct {
	l    *slog.Logger
	note func(msg string)
}

func (s slogPrintf) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if s.note != nil {
		s.note(msg)
	}
	s.l.Debug("zookeeper client: " + msg)
}

// connErr is a connection attempt's failure, as the library logged it.
type connErr struct {
	gen int
	msg string
}

// dialFailedPrefix starts the library's line for a failed connection
// attempt ("failed to connect to 127.0.0.1:2181: dial tcp ...: connection
// refused").
const dialFailedPrefix = "failed to connect to "

// noteLog keeps the library's last connection failure of connection gen
// so that "no session" errors say why. It runs in the library's
// goroutines and takes no lock.
func (c *Client) noteLog(gen int, msg string) {
	if strings.HasPrefix(msg, dialFailedPrefix) {
		c.dialErr.Store(&connErr{gen: gen, msg: msg})
	}
}

// whyLocked is the reason there is no usable session: the last
// connection failure when the connection has not had a session since,
// else lastErr.
func (c *Client) whyLocked() string {
	if e := c.dialErr.Load(); e != nil && e.gen == c.gen && c.state != gozk.StateHasSession {
		return e.msg
	}
	return c.lastErr
}

// onEvent runs synchronously in the connection's goroutines: it must not
// block. Events of replaced connections are ignored.
func (c *Client) onEvent(gen int, ev gozk.Event) {
	if ev.Type != gozk.EventSession {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.state == ev.State {
		return
	}
	c.state = ev.State
	switch ev.State {
	case gozk.StateHasSession:
		if c.conn != nil { // else dial counts it
			c.countSessionLocked()
		}
		c.lastErr = ""
		c.dialErr.Store(nil)
	case gozk.StateExpired:
		c.lastErr = "session expired"
	case gozk.StateAuthFailed:
		c.lastErr = "authentication failed"
	case gozk.StateDisconnected, gozk.StateConnecting:
		if c.lastErr == "" {
			c.lastErr = "disconnected from " + c.serverList
		}
	}
	if ev.State != gozk.StateHasSession {
		c.authed = false
	}
	c.notifyLocked()
}

// keep runs for the client's life. It adds authInfo to each new
// connection before requests are let through (the library re-sends
// accepted credentials itself when it reconnects), and it replaces a
// connection that has had no session for longer than the session
// timeout: the library alone would retry for ever against an ensemble
// that lost its data (it refuses a client that has seen a newer
// transaction than its own), as Curator does.
func (c *Client) keep() {
	defer close(c.done)
	acceptedGen := 0
	var downSince time.Time
	for {
		c.mu.Lock()
		has, gen, conn, ch := c.state == gozk.StateHasSession, c.gen, c.conn, c.changed
		c.mu.Unlock()
		var retry <-chan time.Time
		switch {
		case has:
			downSince = time.Time{}
			if c.auth != nil && acceptedGen != gen {
				if err := conn.AddAuth(c.auth.Scheme, []byte(c.auth.Auth)); err != nil {
					c.mu.Lock()
					c.lastErr = "authInfo (scheme " + c.auth.Scheme + ") not accepted: " + err.Error()
					c.mu.Unlock()
					c.log.Warn("zookeeper: adding authInfo failed; retrying", "servers", c.serverList, "scheme", c.auth.Scheme, "err", err)
					retry = time.After(500 * time.Millisecond)
					break
				}
				acceptedGen = gen
			}
			c.mu.Lock()
			if c.gen == gen && c.state == gozk.StateHasSession && !c.authed {
				c.authed = true
				c.notifyLocked()
			}
			ch = c.changed
			c.mu.Unlock()
		case downSince.IsZero():
			downSince = time.Now()
			retry = time.After(c.resetAfter)
		case time.Since(downSince) >= c.resetAfter:
			c.log.Warn("zookeeper: no session for longer than the session timeout; starting a new connection", "servers", c.serverList, "for", time.Since(downSince).Round(time.Millisecond))
			if err := c.dial(); err != nil {
				c.log.Warn("zookeeper: new connection failed", "servers", c.serverList, "err", err)
			}
			// The old connection's watches end now, so that their owners
			// resynchronise on the new one: the library ends them only once
			// its Close is through, which a connection stuck waiting for a
			// server's handshake answer delays by up to ten read timeouts
			// (a minute with a 10s session), all that time with their
			// changes unseen.
			c.endWatches(errReplaced)
			conn.Close()
			downSince = time.Now()
			continue
		default:
			retry = time.After(c.resetAfter - time.Since(downSince))
		}
		select {
		case <-c.stop:
			return
		case <-ch:
		case <-retry:
		}
	}
}

// readyLocked: a session, and the credentials accepted when there are some.
func (c *Client) readyLocked() bool {
	return c.state == gozk.StateHasSession && (c.auth == nil || c.authed)
}

// Status reports whether the client has a usable session and, when it has
// not, why ("disconnected from ...", "session expired").
func (c *Client) Status() (ok bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, "closed"
	}
	if c.readyLocked() {
		return true, ""
	}
	if why := c.whyLocked(); why != "" {
		return false, why
	}
	return false, "connecting to " + c.serverList
}

// Changed returns a channel closed at the next change of the connection
// state.
func (c *Client) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Sessions counts the sessions established so far: it grows when a
// session expired and a new one was opened (its watches and ephemeral
// nodes are gone).
func (c *Client) Sessions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions
}

// Servers returns the ensemble's addresses, comma-separated.
func (c *Client) Servers() string { return c.serverList }

// WaitReady waits until the client has a usable session or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return fmt.Errorf("zookeeper %s: client closed", c.serverList)
		}
		if c.readyLocked() {
			c.mu.Unlock()
			return nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			c.mu.Lock()
			why := c.whyLocked() // as of now: a failure logged meanwhile changes nothing else
			c.mu.Unlock()
			if why == "" {
				why = "connecting"
			}
			return fmt.Errorf("zookeeper %s: no session (%s): %w", c.serverList, why, ctx.Err())
		}
	}
}

// Close ends the session (its ephemeral nodes go) and stops reconnecting.
// It is idempotent.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.stop)
		c.cur().Close()
		<-c.done
	})
}

type result[T any] struct {
	v   T
	err error
}

// do runs one request within the client's request timeout and ctx: it
// waits for a session first, and gives up (leaving the request to the
// library, which answers it on reconnection or close) when time runs out.
func do[T any](ctx context.Context, c *Client, op, path string, f func() (T, error)) (T, error) {
	var zero T
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		return zero, fmt.Errorf("%s %s: %w", op, path, err)
	}
	ch := make(chan result[T], 1)
	go func() {
		v, err := f()
		ch <- result[T]{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return zero, fmt.Errorf("zookeeper %s %s: %w", op, path, r.err)
		}
		return r.v, nil
	case <-ctx.Done():
		return zero, fmt.Errorf("zookeeper %s %s: no answer from %s: %w", op, path, c.serverList, ctx.Err())
	}
}

// Node is a znode's data with its stat.
type Node struct {
	Data []byte
	Stat *gozk.Stat
}

// Watch is a one-shot watch: it delivers one event (the node changed, was
// created or deleted, or EventNotWatching when the session expired or the
// client closed) and is then closed. When the ctx of the request that set
// it ends first, it is dropped: it never delivers nor closes.
type Watch = <-chan gozk.Event

// Stat is a znode's metadata.
type Stat = gozk.Stat

// Get reads a znode.
func (c *Client) Get(ctx context.Context, path string) (Node, error) {
	return do(ctx, c, "get", path, func() (Node, error) {
		d, st, err := c.cur().Get(path)
		return Node{d, st}, err
	})
}

// Watches are shared: ZooKeeper (and the library) keep a one-shot watch
// per path and kind until it fires, so a caller that watches a path again
// (after a resync, or a new subscriber after the last one left) would
// otherwise add a registration that lingers until the node changes — for
// ever, for a path that is never created. Client keeps one registration
// per (path, kind) and fans its event out to every caller waiting on it;
// a caller stops waiting when the ctx of its request ends.
type watchKind uint8

const (
	watchData  watchKind = iota // data changes and deletion (GetW; ExistsW on an existing node)
	watchExist                  // creation (ExistsW on a missing node)
	watchChild                  // children list changes and deletion (ChildrenW)
)

type watchKey struct {
	path string
	kind watchKind
}

type sharedWatch struct {
	next    uint64
	waiters map[uint64]chan gozk.Event
}

// attachLocked adds a waiter to sh that leaves when ctx ends.
func (c *Client) attachLocked(ctx context.Context, sh *sharedWatch) Watch {
	id := sh.next
	sh.next++
	ch := make(chan gozk.Event, 1)
	sh.waiters[id] = ch
	context.AfterFunc(ctx, func() {
		c.wmu.Lock()
		delete(sh.waiters, id)
		c.wmu.Unlock()
	})
	return ch
}

// sharedFor returns the registration of key, if one is live.
func (c *Client) sharedFor(keys ...watchKey) (*sharedWatch, bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, k := range keys {
		if sh := c.watches[k]; sh != nil {
			return sh, true
		}
	}
	return nil, false
}

// attach waits on sh (from sharedFor) for ctx's lifetime.
func (c *Client) attach(ctx context.Context, sh *sharedWatch) Watch {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.attachLocked(ctx, sh)
}

// install makes lw, a watch just registered with the library, the shared
// registration of key (unless another caller installed one meanwhile:
// then lw is left to fire unread) and attaches a waiter for ctx.
func (c *Client) install(ctx context.Context, key watchKey, lw <-chan gozk.Event) Watch {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	sh := c.watches[key]
	if sh == nil {
		sh = &sharedWatch{waiters: map[uint64]chan gozk.Event{}}
		c.watches[key] = sh
		go c.fanOut(key, sh, lw)
	}
	return c.attachLocked(ctx, sh)
}

// fanOut delivers the registration's one event to its waiters. The
// library always ends a watch: with its event, or EventNotWatching when
// the session expires or the client closes.
func (c *Client) fanOut(key watchKey, sh *sharedWatch, lw <-chan gozk.Event) {
	ev, ok := <-lw
	if !ok {
		ev = gozk.Event{Type: gozk.EventNotWatching, Path: key.path, Err: gozk.ErrClosing}
	}
	c.wmu.Lock()
	if c.watches[key] == sh {
		delete(c.watches, key)
	}
	waiters := sh.waiters
	sh.waiters = map[uint64]chan gozk.Event{}
	c.wmu.Unlock()
	for _, ch := range waiters {
		ch <- ev // buffered, one event each
		close(ch)
	}
}

// errReplaced ends the watches of a connection the client replaced.
var errReplaced = errors.New("zookeeper: connection replaced after losing its session")

// endWatches ends every shared registration at once: each waiter gets
// EventNotWatching with err. A registration's own event, if the library
// delivers it later, reaches no one (fanOut finds no waiters).
func (c *Client) endWatches(err error) {
	type end struct {
		ch chan gozk.Event
		ev gozk.Event
	}
	var ends []end
	c.wmu.Lock()
	for key, sh := range c.watches {
		ev := gozk.Event{Type: gozk.EventNotWatching, State: gozk.StateDisconnected, Path: key.path, Err: err}
		for _, ch := range sh.waiters {
			ends = append(ends, end{ch, ev})
		}
		sh.waiters = map[uint64]chan gozk.Event{}
	}
	clear(c.watches)
	c.wmu.Unlock()
	for _, e := range ends {
		e.ch <- e.ev // buffered, one event each
		close(e.ch)
	}
}

// Watches returns the number of watch registrations the client holds and
// of callers waiting on them (for the state page and leak tests).
func (c *Client) Watches() (registrations, waiters int) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, sh := range c.watches {
		waiters += len(sh.waiters)
	}
	return len(c.watches), waiters
}

// GetW reads a znode and watches its data (and its deletion) for as long
// as ctx lives.
func (c *Client) GetW(ctx context.Context, path string) (Node, Watch, error) {
	type res struct {
		n Node
		w Watch
	}
	key := watchKey{path, watchData}
	r, err := do(ctx, c, "get", path, func() (res, error) {
		if sh, ok := c.sharedFor(key); ok {
			w := c.attach(ctx, sh) // before the read: no change is missed
			d, st, err := c.cur().Get(path)
			return res{Node{d, st}, w}, err
		}
		d, st, lw, err := c.cur().GetW(path)
		if err != nil {
			return res{}, err
		}
		return res{Node{d, st}, c.install(ctx, key, lw)}, nil
	})
	return r.n, r.w, err
}

// Children lists a znode's children (unsorted).
func (c *Client) Children(ctx context.Context, path string) ([]string, error) {
	return do(ctx, c, "children", path, func() ([]string, error) {
		ch, _, err := c.cur().Children(path)
		return ch, err
	})
}

// ChildrenW lists a znode's children and watches the list (and the
// node's deletion) for as long as ctx lives.
func (c *Client) ChildrenW(ctx context.Context, path string) ([]string, Watch, error) {
	type res struct {
		names []string
		w     Watch
	}
	key := watchKey{path, watchChild}
	r, err := do(ctx, c, "children", path, func() (res, error) {
		if sh, ok := c.sharedFor(key); ok {
			w := c.attach(ctx, sh)
			names, _, err := c.cur().Children(path)
			return res{names, w}, err
		}
		names, _, lw, err := c.cur().ChildrenW(path)
		if err != nil {
			return res{}, err
		}
		return res{names, c.install(ctx, key, lw)}, nil
	})
	return r.names, r.w, err
}

// ExistsW reports whether a znode exists and watches its creation, change
// or deletion for as long as ctx lives.
func (c *Client) ExistsW(ctx context.Context, path string) (bool, Watch, error) {
	type res struct {
		ok bool
		w  Watch
	}
	r, err := do(ctx, c, "exists", path, func() (res, error) {
		// A live registration of either kind fires at the next creation,
		// change or deletion (at worst it is in flight: the caller wakes
		// and looks again).
		if sh, ok := c.sharedFor(watchKey{path, watchExist}, watchKey{path, watchData}); ok {
			w := c.attach(ctx, sh)
			ok, _, err := c.cur().Exists(path)
			return res{ok, w}, err
		}
		ok, _, lw, err := c.cur().ExistsW(path)
		if err != nil {
			return res{}, err
		}
		kind := watchExist
		if ok {
			kind = watchData
		}
		return res{ok, c.install(ctx, watchKey{path, kind}, lw)}, nil
	})
	return r.ok, r.w, err
}

// Create creates a znode (flags: 0, or gozk.FlagEphemeral / FlagSequence)
// and returns its path.
func (c *Client) Create(ctx context.Context, path string, data []byte, flags int32, acl []gozk.ACL) (string, error) {
	return do(ctx, c, "create", path, func() (string, error) {
		return c.cur().Create(path, data, flags, acl)
	})
}

// CreateAll creates path and its missing ancestors (persistent, with acl,
// empty data); a node that exists already is fine.
func (c *Client) CreateAll(ctx context.Context, path string, acl []gozk.ACL) error {
	if path == "/" || path == "" {
		return nil
	}
	var at string
	for _, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		at += "/" + seg
		if _, err := c.Create(ctx, at, nil, 0, acl); err != nil && !errors.Is(err, gozk.ErrNodeExists) {
			return err
		}
	}
	return nil
}

// Set replaces a znode's data if its version is version (-1: any).
func (c *Client) Set(ctx context.Context, path string, data []byte, version int32) (*gozk.Stat, error) {
	return do(ctx, c, "set", path, func() (*gozk.Stat, error) {
		return c.cur().Set(path, data, version)
	})
}

// Delete removes a znode if its version is version (-1: any).
func (c *Client) Delete(ctx context.Context, path string, version int32) error {
	_, err := do(ctx, c, "delete", path, func() (struct{}, error) {
		return struct{}{}, c.cur().Delete(path, version)
	})
	return err
}
