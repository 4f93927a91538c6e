// Package zk is the io.l5d.zk dtab store on ZooKeeper: one znode per
// namespace, <pathPrefix>/<namespace>, whose data is the dtab's canonical
// text (Linkerd's ZkDtabStore layout, so both can share a tree).
//
//   - The version of a dtab is its znode's data version as 4 big-endian
//     bytes (spec/namerd-api.md §5): a dtab created has ETag "AAAAAA==",
//     the next write "AAAAAQ==". A namespace deleted and created again
//     starts from 0 again (the invariant is per life of a namespace).
//   - Update is ZooKeeper's conditional setData (compare-and-set on the
//     data version); Create fails on an existing node; Delete of a missing
//     node is ErrNotFound. Nodes (and pathPrefix, when missing) are created
//     with the configured ACLs; ZooKeeper's NOAUTH is ErrForbidden.
//   - Namespace names are znode names: "/", ".", ".." and the characters
//     ZooKeeper refuses are invalid namespaces.
//   - Observation is one follower per store: a snapshot (children of the
//     prefix and their data, each with a watch), then the events of those
//     watches. While ZooKeeper is unreachable observers keep the last
//     known state; the session's watches resume on reconnection, and when
//     the session expired the follower takes a fresh snapshot.
package zk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
	"github.com/linnet-mesh/linnet/internal/zk"
)

// Options configure Open.
type Options struct {
	// Servers are the ensemble's "host:port" addresses.
	Servers []string
	// PathPrefix is the parent znode of the namespaces, e.g. "/dtabs".
	PathPrefix string
	// SessionTimeout is the ZooKeeper session timeout (default 10s).
	SessionTimeout time.Duration
	// RequestTimeout bounds each request (default 5s).
	RequestTimeout time.Duration
	// Auth is added to the session when set.
	Auth *zk.AuthInfo
	// ACLs are set on created znodes (default world:anyone:crwda).
	ACLs   []gozk.ACL
	Logger *slog.Logger
}

// Store is a ZooKeeper-backed storage.Store.
type Store struct {
	cli    *zk.Client
	prefix string
	acls   []gozk.ACL
	log    *slog.Logger
	feed   *storage.Feed

	stop   context.CancelFunc
	done   chan struct{}
	closed sync.Once
}

// Open connects to ZooKeeper and starts following the prefix. It does not
// wait for ZooKeeper: requests fail after their timeout, and observations
// stay pending, until it answers.
func Open(o Options) (*Store, error) {
	if err := zk.ValidatePath(o.PathPrefix); err != nil || o.PathPrefix == "/" {
		return nil, fmt.Errorf("zk storage: pathPrefix %q is not a znode path below the root", o.PathPrefix)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(o.ACLs) == 0 {
		o.ACLs = gozk.WorldACL(gozk.PermAll)
	}
	cli, err := zk.Dial(zk.Options{Servers: o.Servers, SessionTimeout: o.SessionTimeout, RequestTimeout: o.RequestTimeout, Auth: o.Auth, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("zk storage: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Store{cli: cli, prefix: o.PathPrefix, acls: o.ACLs, log: o.Logger, feed: storage.NewFeed(), stop: stop, done: make(chan struct{})}
	go s.follow(ctx)
	return s, nil
}

// Version encodes a znode data version as a storage version.
func Version(v int32) storage.Version {
	return binary.BigEndian.AppendUint32(nil, uint32(v))
}

func versionOf(v storage.Version) (int32, bool) {
	if len(v) != 4 {
		return 0, false
	}
	return int32(binary.BigEndian.Uint32(v)), true
}

func (s *Store) node(ns string) string { return s.prefix + "/" + ns }

// checkNamespace adds ZooKeeper's znode name rules to storage's.
func checkNamespace(ns string) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return err
	}
	if err := zk.ValidateNodeName(ns); err != nil {
		return &storage.InvalidNamespaceError{Namespace: ns, Reason: err.Error()}
	}
	return nil
}

// wrap maps ZooKeeper's NOAUTH on a read to ErrForbidden and prefixes the
// kind.
func wrap(err error) error { return wrapOp("read", err) }

// wrapWrite is wrap for writes.
func wrapWrite(err error) error { return wrapOp("write", err) }

// wrapOp maps ZooKeeper's NOAUTH to a storage.ForbiddenError that says what
// was refused, and prefixes other errors with the kind.
func wrapOp(what string, err error) error {
	if errors.Is(err, gozk.ErrNoAuth) {
		return &storage.ForbiddenError{
			Reason: fmt.Sprintf("ZooKeeper refused the %s (NOAUTH): %v", what, err),
			Err:    err,
		}
	}
	return fmt.Errorf("zk storage: %w", err)
}

func (s *Store) decode(ns string, n zk.Node) (*storage.VersionedDtab, error) {
	d, err := dtab.Parse(string(n.Data))
	if err != nil {
		return nil, fmt.Errorf("zk storage: znode %s does not hold a valid dtab: %w", s.node(ns), err)
	}
	return &storage.VersionedDtab{Dtab: d, Version: Version(n.Stat.Version)}, nil
}

// List implements storage.Store.
func (s *Store) List(ctx context.Context) ([]string, error) {
	names, err := s.cli.Children(ctx, s.prefix)
	if errors.Is(err, gozk.ErrNoNode) {
		return []string{}, nil
	}
	if err != nil {
		return nil, wrap(err)
	}
	slices.Sort(names)
	return names, nil
}

// Get implements storage.Store.
func (s *Store) Get(ctx context.Context, ns string) (storage.VersionedDtab, error) {
	if checkNamespace(ns) != nil {
		return storage.VersionedDtab{}, storage.ErrNotFound
	}
	n, err := s.cli.Get(ctx, s.node(ns))
	if errors.Is(err, gozk.ErrNoNode) {
		return storage.VersionedDtab{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.VersionedDtab{}, wrap(err)
	}
	v, err := s.decode(ns, n)
	if err != nil {
		return storage.VersionedDtab{}, err
	}
	return *v, nil
}

// create creates the namespace's node, and the prefix when it is missing.
func (s *Store) create(ctx context.Context, ns string, d dtab.Dtab) error {
	for range 2 {
		_, err := s.cli.Create(ctx, s.node(ns), []byte(d.String()), 0, s.acls)
		if !errors.Is(err, gozk.ErrNoNode) {
			return err
		}
		if err := s.cli.CreateAll(ctx, s.prefix, s.acls); err != nil {
			return err
		}
	}
	return fmt.Errorf("create %s: %s keeps disappearing", s.node(ns), s.prefix)
}

// Create implements storage.Store.
func (s *Store) Create(ctx context.Context, ns string, d dtab.Dtab) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	err := s.create(ctx, ns, d)
	switch {
	case errors.Is(err, gozk.ErrNodeExists):
		return storage.ErrExists
	case err != nil:
		return wrapWrite(err)
	}
	return nil
}

// Update implements storage.Store.
func (s *Store) Update(ctx context.Context, ns string, d dtab.Dtab, v storage.Version) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	ver, ok := versionOf(v)
	if !ok {
		// Not a version of this store: it matches nothing, but a missing
		// namespace is still ErrNotFound.
		if _, err := s.Get(ctx, ns); err != nil {
			return err
		}
		return storage.ErrVersionMismatch
	}
	_, err := s.cli.Set(ctx, s.node(ns), []byte(d.String()), ver)
	switch {
	case errors.Is(err, gozk.ErrNoNode):
		return storage.ErrNotFound
	case errors.Is(err, gozk.ErrBadVersion):
		return storage.ErrVersionMismatch
	case err != nil:
		return wrapWrite(err)
	}
	return nil
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, ns string, d dtab.Dtab) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	// Set, else create; a node deleted or created by another writer in
	// between sends us round again, a bounded number of times.
	for range 10 {
		_, err := s.cli.Set(ctx, s.node(ns), []byte(d.String()), -1)
		if !errors.Is(err, gozk.ErrNoNode) {
			if err != nil {
				return wrapWrite(err)
			}
			return nil
		}
		err = s.create(ctx, ns, d)
		if !errors.Is(err, gozk.ErrNodeExists) { // else created meanwhile: set it
			if err != nil {
				return wrapWrite(err)
			}
			return nil
		}
		if ctx.Err() != nil {
			return wrapWrite(ctx.Err())
		}
	}
	return wrapWrite(fmt.Errorf("put %s: the node keeps being created and deleted by another writer", s.node(ns)))
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, ns string) error {
	if checkNamespace(ns) != nil {
		return storage.ErrNotFound
	}
	err := s.cli.Delete(ctx, s.node(ns), -1)
	switch {
	case errors.Is(err, gozk.ErrNoNode):
		return storage.ErrNotFound
	case err != nil:
		return wrapWrite(err)
	}
	return nil
}

// Observe implements storage.Store.
func (s *Store) Observe(ns string) watch.Value[watch.Activity[storage.Observation]] {
	return s.feed.Observe(ns)
}

// ObserveList implements storage.Store.
func (s *Store) ObserveList() watch.Value[watch.Activity[[]string]] { return s.feed.ObserveList() }

// Close stops the follower and ends the session. It is idempotent.
func (s *Store) Close() error {
	s.closed.Do(func() {
		s.stop()
		<-s.done
		s.cli.Close()
	})
	return nil
}

// ConnectionStatus reports whether the store has a ZooKeeper session and,
// if not, why.
func (s *Store) ConnectionStatus() (ok bool, reason string) { return s.cli.Status() }

// follow keeps the feed in step with ZooKeeper until ctx ends; any break
// (session expired, a request failed) starts over with a snapshot after a
// pause that grows while ZooKeeper keeps failing.
func (s *Store) follow(ctx context.Context) {
	defer close(s.done)
	const minPause, maxPause = 100 * time.Millisecond, 5 * time.Second
	pause := minPause
	for ctx.Err() == nil {
		synced, err := s.run(ctx)
		if ctx.Err() != nil {
			return
		}
		if synced {
			pause = minPause
		}
		if errors.Is(err, errNewPrefix) {
			continue // not a failure: follow the new prefix at once
		}
		s.log.Warn("zookeeper dtab watch interrupted; resynchronising", "prefix", s.prefix, "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}

// event is a fired watch: of the prefix's children (ns == ""), or of one
// namespace's node, registered as generation gen.
type event struct {
	ns  string
	gen uint64
	ev  gozk.Event
}

// nsState is what the follower knows of one namespace's znode.
type nsState struct {
	czxid int64  // tells a re-created node from the old one
	gen   uint64 // the live data watch
}

type follower struct {
	s      *Store
	ctx    context.Context
	events chan event
	gen    uint64
	nss    map[string]nsState
}

// forward delivers w's event to the follower's loop.
func (f *follower) forward(ns string, gen uint64, w zk.Watch) {
	go func() {
		select {
		case ev, ok := <-w:
			if !ok {
				return
			}
			select {
			case f.events <- event{ns, gen, ev}:
			case <-f.ctx.Done():
			}
		case <-f.ctx.Done():
		}
	}()
}

// run takes a snapshot and applies the watches' events until a watch
// ends without an event of the data (session expired) or a request fails.
// synced reports whether the snapshot was taken.
func (s *Store) run(ctx context.Context) (synced bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the forwarders of this round
	f := &follower{s: s, ctx: ctx, events: make(chan event, 16), nss: map[string]nsState{}}

	names, cw, err := s.cli.ChildrenW(ctx, s.prefix)
	if errors.Is(err, gozk.ErrNoNode) {
		// No namespace yet: empty until the prefix is created.
		exists, ew, err := s.cli.ExistsW(ctx, s.prefix)
		if err != nil {
			return false, err
		}
		if exists {
			return true, errNewPrefix
		}
		s.feed.Reset(nil)
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-ew:
			return true, errNewPrefix
		}
	}
	if err != nil {
		return false, err
	}
	f.forward("", 0, cw)
	all := make(map[string]*storage.VersionedDtab, len(names))
	bad := map[string]error{}
	for _, ns := range names {
		n, err := f.read(ns)
		if errors.Is(err, gozk.ErrNoNode) {
			continue // deleted meanwhile; the children watch has fired
		}
		if err != nil {
			return false, err
		}
		if v, err := s.decode(ns, n); err != nil {
			bad[ns] = err
		} else {
			all[ns] = v
		}
	}
	s.feed.ResetWith(all, bad)

	for {
		var e event
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case e = <-f.events:
		}
		if e.ev.Type == gozk.EventNotWatching {
			return true, fmt.Errorf("watch of %s ended: %v", s.node(e.ns), e.ev.Err)
		}
		if e.ns == "" {
			if e.ev.Type == gozk.EventNodeDeleted {
				return true, errors.New("prefix deleted")
			}
			names, cw, err := s.cli.ChildrenW(ctx, s.prefix)
			if err != nil {
				return true, err
			}
			f.forward("", 0, cw)
			for _, ns := range names {
				if _, known := f.nss[ns]; !known {
					if err := f.refresh(ns); err != nil {
						return true, err
					}
				}
			}
			continue
		}
		if st, ok := f.nss[e.ns]; !ok || st.gen != e.gen {
			continue // a watch of a node the follower has forgotten
		}
		if err := f.refresh(e.ns); err != nil {
			return true, err
		}
	}
}

var errNewPrefix = errors.New("prefix created")

// read reads ns with a data watch and records it.
func (f *follower) read(ns string) (zk.Node, error) {
	n, w, err := f.s.cli.GetW(f.ctx, f.s.node(ns))
	if err != nil {
		return n, err
	}
	f.gen++
	f.nss[ns] = nsState{czxid: n.Stat.Czxid, gen: f.gen}
	f.forward(ns, f.gen, w)
	return n, nil
}

// refresh re-reads ns after its watch fired (or it appeared) and tells
// the feed: deleted, re-created (absent for an instant, so that a version
// that starts over is seen as new), or changed.
func (f *follower) refresh(ns string) error {
	old, known := f.nss[ns]
	n, err := f.read(ns)
	if errors.Is(err, gozk.ErrNoNode) {
		delete(f.nss, ns)
		if known {
			f.s.feed.Set(ns, nil)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if known && old.czxid != n.Stat.Czxid {
		f.s.feed.Set(ns, nil)
	}
	v, err := f.s.decode(ns, n)
	if err != nil {
		f.s.feed.SetError(ns, err)
		return nil
	}
	f.s.feed.Set(ns, v)
	return nil
}

// Interface guard.
var _ storage.Store = (*Store)(nil)
