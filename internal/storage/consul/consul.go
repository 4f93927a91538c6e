// Package consul is the io.l5d.consul dtab store: one Consul KV key per
// namespace, <pathPrefix>/<namespace>, holding the dtab's canonical text.
//
//   - Versions are the key's ModifyIndex in decimal, so the ETag of a dtab
//     written at index 42 is base64("42") = "NDI=". Consul never reuses an
//     index, even across delete and re-create.
//   - Every write sets the key's Flags to a random number: Consul does not
//     bump the ModifyIndex of a write that changes neither value nor flags,
//     and rewriting the same dtab must still produce a new version.
//   - Create is a check-and-set at index 0 (only if absent), Update a
//     check-and-set at the expected ModifyIndex, Delete a check-and-set
//     delete of the index just read: concurrent writers are decided by
//     Consul itself.
//   - Observation is one blocking query (X-Consul-Index) on the whole
//     prefix, started when the store opens. On errors it backs off and
//     keeps the last known state; a restarted agent whose index went
//     backwards is read from scratch.
//   - Namespaces are letters, digits, '-', '_' and '.' (not "." or ".."):
//     every name Linkerd's store accepts, and nothing that would nest keys.
package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Consistency modes of Consul reads.
const (
	ModeDefault    = "default"
	ModeStale      = "stale"
	ModeConsistent = "consistent"
)

// Options configure Open.
type Options struct {
	// Client talks to the Consul agent.
	Client *api.Client
	// PathPrefix is the key prefix, e.g. "/namerd/dtabs" (leading and
	// trailing slashes are dropped: Consul keys have none).
	PathPrefix string
	// Datacenter to read and write in; empty: the agent's.
	Datacenter string
	// ReadConsistency applies to Get, List and the observation;
	// WriteConsistency to the reads that Update and Delete make.
	ReadConsistency, WriteConsistency string
	// FailFast makes observations fail while Consul cannot be reached
	// before it first answered (default: they stay pending).
	FailFast bool
	// Backoff paces retries of the observation (default jittered
	// 100ms–10s).
	Backoff *backoff.Policy
	// RequestTimeout bounds each request but the blocking query (default
	// 10s); WaitTime bounds one blocking query (default 1m).
	RequestTimeout, WaitTime time.Duration
	Logger                   *slog.Logger
	// OnClose, when set, runs when the store is closed (e.g. to close the
	// client's idle connections).
	OnClose func()
}

// Store is a Consul-KV-backed storage.Store.
type Store struct {
	kv      *api.KV
	prefix  string // with the trailing "/"
	o       Options
	backoff backoff.Policy
	log     *slog.Logger
	feed    *storage.Feed

	stop   context.CancelFunc
	done   chan struct{}
	closed sync.Once
}

// Open starts following the prefix. It does not wait for Consul: requests
// fail (and observations stay pending) until it answers.
func Open(o Options) (*Store, error) {
	if o.Client == nil {
		return nil, errors.New("consul storage: no client")
	}
	for _, m := range []string{o.ReadConsistency, o.WriteConsistency} {
		if err := CheckMode(m); err != nil {
			return nil, fmt.Errorf("consul storage: %w", err)
		}
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.WaitTime <= 0 {
		o.WaitTime = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	bo := backoff.Policy{}
	if o.Backoff != nil {
		bo = *o.Backoff
	} else {
		bo, _ = backoff.New(backoff.Options{Kind: backoff.KindJittered, MinMs: 100, MaxMs: 10000})
	}
	prefix := strings.Trim(o.PathPrefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Store{
		kv:      o.Client.KV(),
		prefix:  prefix,
		o:       o,
		backoff: bo,
		log:     o.Logger,
		feed:    storage.NewFeed(),
		stop:    stop,
		done:    make(chan struct{}),
	}
	go s.follow(ctx)
	return s, nil
}

// CheckMode reports whether m is a consistency mode ("" is the default).
func CheckMode(m string) error {
	switch m {
	case "", ModeDefault, ModeStale, ModeConsistent:
		return nil
	}
	return fmt.Errorf("%q is not a consistency mode (default, stale, consistent)", m)
}

// CheckNamespace applies storage.CheckNamespace and this store's own rule.
func CheckNamespace(ns string) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return err
	}
	if ns == "." || ns == ".." {
		return &storage.InvalidNamespaceError{Namespace: ns, Reason: "not a Consul key name"}
	}
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return &storage.InvalidNamespaceError{Namespace: ns, Reason: fmt.Sprintf("%q at byte %d: the Consul store takes letters, digits, '-', '_' and '.'", c, i)}
		}
	}
	return nil
}

func (s *Store) key(ns string) string { return s.prefix + ns }

func (s *Store) query(ctx context.Context, mode string) (*api.QueryOptions, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.o.RequestTimeout)
	q := &api.QueryOptions{Datacenter: s.o.Datacenter}
	switch mode {
	case ModeStale:
		q.AllowStale = true
	case ModeConsistent:
		q.RequireConsistent = true
	}
	return q.WithContext(ctx), cancel
}

func (s *Store) write(ctx context.Context) (*api.WriteOptions, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.o.RequestTimeout)
	return (&api.WriteOptions{Datacenter: s.o.Datacenter}).WithContext(ctx), cancel
}

// writeFlags returns the Flags of a write: random, because Consul leaves
// the ModifyIndex alone when a write changes neither the value nor the
// flags, and every acknowledged write must produce a new version.
func writeFlags() uint64 { return rand.Uint64() }

func versionOf(index uint64) storage.Version {
	return storage.Version(strconv.FormatUint(index, 10))
}

func indexOf(v storage.Version) (uint64, bool) {
	n, err := strconv.ParseUint(string(v), 10, 64)
	return n, err == nil && n > 0 && string(v) == strconv.FormatUint(n, 10)
}

func (s *Store) decode(p *api.KVPair) (*storage.VersionedDtab, error) {
	d, err := dtab.Parse(string(p.Value))
	if err != nil {
		return nil, fmt.Errorf("consul storage: key %s does not hold a valid dtab: %w", p.Key, err)
	}
	return &storage.VersionedDtab{Dtab: d, Version: versionOf(p.ModifyIndex)}, nil
}

// wrap names the store in err and maps Consul's 403 to ErrForbidden.
func wrap(op string, err error) error {
	var se api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusForbidden {
		return &storage.ForbiddenError{
			Reason: fmt.Sprintf("Consul refused %s (403): %s", op, strings.TrimSpace(se.Body)),
			Err:    err,
		}
	}
	return fmt.Errorf("consul storage: %s: %w", op, err)
}

// namespaceOf returns the namespace of a key under the prefix, or false for
// keys that are not one of ours (nested keys, foreign names).
func (s *Store) namespaceOf(key string) (string, bool) {
	ns, ok := strings.CutPrefix(key, s.prefix)
	if !ok || CheckNamespace(ns) != nil {
		return "", false
	}
	return ns, true
}

// List implements storage.Store.
func (s *Store) List(ctx context.Context) ([]string, error) {
	q, cancel := s.query(ctx, s.o.ReadConsistency)
	defer cancel()
	keys, _, err := s.kv.Keys(s.prefix, "/", q)
	if err != nil {
		return nil, wrap("list", err)
	}
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		if ns, ok := s.namespaceOf(k); ok {
			names = append(names, ns)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Get implements storage.Store.
func (s *Store) Get(ctx context.Context, ns string) (storage.VersionedDtab, error) {
	if CheckNamespace(ns) != nil {
		return storage.VersionedDtab{}, storage.ErrNotFound
	}
	q, cancel := s.query(ctx, s.o.ReadConsistency)
	defer cancel()
	p, _, err := s.kv.Get(s.key(ns), q)
	if err != nil {
		return storage.VersionedDtab{}, wrap("get "+ns, err)
	}
	if p == nil {
		return storage.VersionedDtab{}, storage.ErrNotFound
	}
	v, err := s.decode(p)
	if err != nil {
		return storage.VersionedDtab{}, err
	}
	return *v, nil
}

// Create implements storage.Store.
func (s *Store) Create(ctx context.Context, ns string, d dtab.Dtab) error {
	if err := CheckNamespace(ns); err != nil {
		return err
	}
	w, cancel := s.write(ctx)
	defer cancel()
	ok, _, err := s.kv.CAS(&api.KVPair{Key: s.key(ns), Value: []byte(d.String()), Flags: writeFlags(), ModifyIndex: 0}, w)
	if err != nil {
		return wrap("create "+ns, err)
	}
	if !ok {
		return storage.ErrExists
	}
	return nil
}

// Update implements storage.Store.
func (s *Store) Update(ctx context.Context, ns string, d dtab.Dtab, v storage.Version) error {
	if err := CheckNamespace(ns); err != nil {
		return err
	}
	if idx, ok := indexOf(v); ok {
		w, cancel := s.write(ctx)
		ok, _, err := s.kv.CAS(&api.KVPair{Key: s.key(ns), Value: []byte(d.String()), Flags: writeFlags(), ModifyIndex: idx}, w)
		cancel()
		if err != nil {
			return wrap("update "+ns, err)
		}
		if ok {
			return nil
		}
	}
	// Refused (or a version that cannot be ours): tell a missing namespace
	// from a stale version.
	q, cancel := s.query(ctx, s.o.WriteConsistency)
	defer cancel()
	p, _, err := s.kv.Get(s.key(ns), q)
	if err != nil {
		return wrap("update "+ns, err)
	}
	if p == nil {
		return storage.ErrNotFound
	}
	return storage.ErrVersionMismatch
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, ns string, d dtab.Dtab) error {
	if err := CheckNamespace(ns); err != nil {
		return err
	}
	w, cancel := s.write(ctx)
	defer cancel()
	if _, err := s.kv.Put(&api.KVPair{Key: s.key(ns), Value: []byte(d.String()), Flags: writeFlags()}, w); err != nil {
		return wrap("put "+ns, err)
	}
	return nil
}

// Delete implements storage.Store. Consul deletes a missing key without
// complaint, so Delete reads the key and deletes that revision of it,
// reading again if it changed in between.
func (s *Store) Delete(ctx context.Context, ns string) error {
	if CheckNamespace(ns) != nil {
		return storage.ErrNotFound
	}
	for {
		q, cancel := s.query(ctx, s.o.WriteConsistency)
		p, _, err := s.kv.Get(s.key(ns), q)
		cancel()
		if err != nil {
			return wrap("delete "+ns, err)
		}
		if p == nil {
			return storage.ErrNotFound
		}
		w, cancel := s.write(ctx)
		ok, _, err := s.kv.DeleteCAS(&api.KVPair{Key: p.Key, ModifyIndex: p.ModifyIndex}, w)
		cancel()
		if err != nil {
			return wrap("delete "+ns, err)
		}
		if ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return wrap("delete "+ns, err)
		}
	}
}

// Observe implements storage.Store.
func (s *Store) Observe(ns string) watch.Value[watch.Activity[storage.Observation]] {
	return s.feed.Observe(ns)
}

// ObserveList implements storage.Store.
func (s *Store) ObserveList() watch.Value[watch.Activity[[]string]] { return s.feed.ObserveList() }

// Close stops the observation. It is idempotent.
func (s *Store) Close() error {
	s.closed.Do(func() {
		s.stop()
		<-s.done
		if s.o.OnClose != nil {
			s.o.OnClose()
		}
	})
	return nil
}

// follow keeps the feed in step with Consul until ctx ends: a blocking
// query on the prefix, each answer a full snapshot.
func (s *Store) follow(ctx context.Context) {
	defer close(s.done)
	bo := s.backoff.Stream()
	var index uint64
	answered := false
	lastErr := ""
	for ctx.Err() == nil {
		q := &api.QueryOptions{Datacenter: s.o.Datacenter, WaitIndex: index, WaitTime: s.o.WaitTime}
		switch s.o.ReadConsistency {
		case ModeStale:
			q.AllowStale = true
		case ModeConsistent:
			q.RequireConsistent = true
		}
		// Consul answers a blocking query within WaitTime plus up to 1/16
		// of jitter; a silent agent must not hold the watch longer.
		qctx, cancel := context.WithTimeout(ctx, s.o.WaitTime+s.o.WaitTime/16+s.o.RequestTimeout)
		pairs, meta, err := s.kv.List(s.prefix, q.WithContext(qctx))
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			err = wrap("watch "+s.prefix, err)
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				s.log.Warn("consul dtab watch failed; keeping the last state", "prefix", s.prefix, "err", err)
			}
			if !answered && s.o.FailFast {
				s.feed.Fail(err)
			}
			index = 0
			select {
			case <-ctx.Done():
				return
			case <-time.After(bo.Next()):
			}
			continue
		}
		if lastErr != "" {
			s.log.Info("consul dtab watch resumed", "prefix", s.prefix)
			lastErr = ""
		}
		bo.Reset()
		if answered && meta.LastIndex == index {
			continue // the wait timed out: nothing changed
		}
		answered = true
		s.reset(pairs)
		switch {
		case meta.LastIndex == 0:
			index = 1 // Consul's advice against a hot loop on a zero index
		case meta.LastIndex < index:
			index = 0 // the index went backwards (a new agent): start over
		default:
			index = meta.LastIndex
		}
	}
}

func (s *Store) reset(pairs api.KVPairs) {
	all := make(map[string]*storage.VersionedDtab, len(pairs))
	bad := map[string]error{}
	for _, p := range pairs {
		ns, ok := s.namespaceOf(p.Key)
		if !ok {
			continue
		}
		v, err := s.decode(p)
		if err != nil {
			bad[ns] = err
			continue
		}
		all[ns] = v
	}
	s.feed.ResetWith(all, bad)
}

var _ storage.Store = (*Store)(nil)
