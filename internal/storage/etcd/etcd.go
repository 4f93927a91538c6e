// Package etcd is the io.l5d.etcd dtab store on etcd v3: one key per
// namespace, <pathPrefix>/<namespace>, holding the dtab's canonical text.
//
//   - Versions are the key's mod_revision in decimal (the v3 counterpart of
//     namerd's v2 modifiedIndex), so the ETag of a dtab written at revision
//     42 is base64("42") = "NDI=". A revision is never reused, even across
//     delete and re-create.
//   - Create, Update and Delete are single etcd transactions: compare
//     create_revision = 0, compare mod_revision = version, so concurrent
//     writers are decided by etcd itself.
//   - Observation is one watch on the whole prefix, started when the store
//     opens: a snapshot read at revision R, then a watch from R+1. If the
//     watch breaks (compaction, lost leader, closed stream) the store takes a
//     fresh snapshot and watches again, so observers converge after etcd
//     restarts; while etcd is unreachable they keep the last known state.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Options configure Open.
type Options struct {
	// Endpoints are etcd client URLs or host:port pairs.
	Endpoints []string
	// PathPrefix is the key prefix without a trailing slash, e.g.
	// "/namerd/dtabs".
	PathPrefix string
	// RequestTimeout bounds each etcd request (default 5s).
	RequestTimeout time.Duration
	// DialTimeout bounds establishing the first connection (default 5s).
	DialTimeout time.Duration
	// TLS, when set, secures the connections to etcd.
	TLS    *tls.Config
	Logger *slog.Logger
}

// Store is an etcd-backed storage.Store.
type Store struct {
	cli     *clientv3.Client
	prefix  string // with the trailing "/"
	timeout time.Duration
	log     *slog.Logger
	feed    *storage.Feed

	stop   context.CancelFunc
	done   chan struct{}
	closed sync.Once
}

// Open connects to etcd and starts following the prefix. It does not wait
// for etcd to answer: requests fail (and observations stay pending) until
// it does.
func Open(o Options) (*Store, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("etcd storage: no endpoints")
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            o.Endpoints,
		DialTimeout:          o.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		TLS:                  o.TLS,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd storage: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Store{
		cli:     cli,
		prefix:  strings.TrimRight(o.PathPrefix, "/") + "/",
		timeout: o.RequestTimeout,
		log:     o.Logger,
		feed:    storage.NewFeed(),
		stop:    stop,
		done:    make(chan struct{}),
	}
	go s.follow(ctx)
	return s, nil
}

func (s *Store) key(ns string) string { return s.prefix + ns }

func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func versionOf(modRev int64) storage.Version {
	return storage.Version(strconv.FormatInt(modRev, 10))
}

func revisionOf(v storage.Version) (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil && n > 0
}

func (s *Store) decode(key string, value []byte, modRev int64) (*storage.VersionedDtab, error) {
	d, err := dtab.Parse(string(value))
	if err != nil {
		return nil, fmt.Errorf("etcd storage: key %s does not hold a valid dtab: %w", key, err)
	}
	return &storage.VersionedDtab{Dtab: d, Version: versionOf(modRev)}, nil
}

// wrap names the store in a read's error; etcd's refusals (auth enabled,
// the client's user lacks the permission) are storage.ForbiddenErrors.
func wrap(err error) error { return wrapOp("read", err) }

// wrapWrite is wrap for writes.
func wrapWrite(err error) error { return wrapOp("write", err) }

func wrapOp(what string, err error) error {
	for _, refusal := range []error{rpctypes.ErrPermissionDenied, rpctypes.ErrUserEmpty, rpctypes.ErrAuthFailed, rpctypes.ErrInvalidAuthToken} {
		if errors.Is(err, refusal) {
			return &storage.ForbiddenError{Reason: fmt.Sprintf("etcd refused the %s: %v", what, err), Err: err}
		}
	}
	return fmt.Errorf("etcd storage: %w", err)
}

// List implements storage.Store.
func (s *Store) List(ctx context.Context) ([]string, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, wrap(err)
	}
	names := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		names = append(names, strings.TrimPrefix(string(kv.Key), s.prefix))
	}
	slices.Sort(names)
	return names, nil
}

// Get implements storage.Store.
func (s *Store) Get(ctx context.Context, ns string) (storage.VersionedDtab, error) {
	if err := storage.CheckNamespace(ns); err != nil {
		return storage.VersionedDtab{}, storage.ErrNotFound
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.key(ns))
	if err != nil {
		return storage.VersionedDtab{}, wrap(err)
	}
	if len(resp.Kvs) == 0 {
		return storage.VersionedDtab{}, storage.ErrNotFound
	}
	kv := resp.Kvs[0]
	v, err := s.decode(string(kv.Key), kv.Value, kv.ModRevision)
	if err != nil {
		return storage.VersionedDtab{}, err
	}
	return *v, nil
}

// Create implements storage.Store.
func (s *Store) Create(ctx context.Context, ns string, d dtab.Dtab) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return err
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	k := s.key(ns)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, d.String())).
		Commit()
	if err != nil {
		return wrapWrite(err)
	}
	if !resp.Succeeded {
		return storage.ErrExists
	}
	return nil
}

// Update implements storage.Store.
func (s *Store) Update(ctx context.Context, ns string, d dtab.Dtab, v storage.Version) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return err
	}
	rev, ok := revisionOf(v)
	if !ok {
		rev = -1 // matches no key, and tells a missing key from a stale version
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	k := s.key(ns)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).
		Then(clientv3.OpPut(k, d.String())).
		Else(clientv3.OpGet(k, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return wrapWrite(err)
	}
	if resp.Succeeded {
		return nil
	}
	if r := resp.Responses; len(r) == 1 && len(r[0].GetResponseRange().GetKvs()) == 0 {
		return storage.ErrNotFound
	}
	return storage.ErrVersionMismatch
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, ns string, d dtab.Dtab) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return err
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	if _, err := s.cli.Put(ctx, s.key(ns), d.String()); err != nil {
		return wrapWrite(err)
	}
	return nil
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, ns string) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return storage.ErrNotFound
	}
	ctx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Delete(ctx, s.key(ns))
	if err != nil {
		return wrapWrite(err)
	}
	if resp.Deleted == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// Observe implements storage.Store.
func (s *Store) Observe(ns string) watch.Value[watch.Activity[storage.Observation]] {
	return s.feed.Observe(ns)
}

// ObserveList implements storage.Store.
func (s *Store) ObserveList() watch.Value[watch.Activity[[]string]] { return s.feed.ObserveList() }

// Close stops the watch and closes the etcd client. It is idempotent.
func (s *Store) Close() error {
	var err error
	s.closed.Do(func() {
		s.stop()
		<-s.done
		err = s.cli.Close()
	})
	return err
}

// follow keeps the feed in step with etcd until ctx ends: snapshot, then
// watch from the snapshot's revision; any break starts over after a pause
// that grows while etcd keeps failing.
func (s *Store) follow(ctx context.Context) {
	defer close(s.done)
	const minPause, maxPause = 100 * time.Millisecond, 5 * time.Second
	pause := minPause
	for ctx.Err() == nil {
		rev, err := s.snapshot(ctx)
		if err == nil {
			err = s.watch(ctx, rev)
			pause = minPause // the snapshot worked: etcd is back
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("etcd dtab watch interrupted; resynchronising", "prefix", s.prefix, "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}

// snapshot reads every namespace and resets the feed; it returns the
// revision the read was made at.
func (s *Store) snapshot(ctx context.Context) (int64, error) {
	octx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.cli.Get(octx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	all := make(map[string]*storage.VersionedDtab, len(resp.Kvs))
	bad := map[string]error{}
	for _, kv := range resp.Kvs {
		ns := strings.TrimPrefix(string(kv.Key), s.prefix)
		v, err := s.decode(string(kv.Key), kv.Value, kv.ModRevision)
		if err != nil {
			bad[ns] = err
			continue
		}
		all[ns] = v
	}
	s.feed.ResetWith(all, bad)
	return resp.Header.Revision, nil
}

// watch applies events after rev until the watch breaks.
func (s *Store) watch(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return err
		}
		for _, ev := range resp.Events {
			ns := strings.TrimPrefix(string(ev.Kv.Key), s.prefix)
			switch ev.Type {
			case clientv3.EventTypeDelete:
				s.feed.Set(ns, nil)
			default:
				v, err := s.decode(string(ev.Kv.Key), ev.Kv.Value, ev.Kv.ModRevision)
				if err != nil {
					s.feed.SetError(ns, err)
					continue
				}
				s.feed.Set(ns, v)
			}
		}
	}
	return errors.New("watch stream closed")
}

var _ storage.Store = (*Store)(nil)
