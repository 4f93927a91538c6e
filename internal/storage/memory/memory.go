// Package memory is the io.l5d.inMemory dtab store: namespaces live in
// process memory and are lost on exit. Versions are 8-byte big-endian
// counters, exactly like namerd's: a namespace starts at 1 (ETag
// "AAAAAAAAAAE=") and every successful write increments it; deleting and
// re-creating a namespace restarts at 1.
package memory

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Store is an in-memory storage.Store.
type Store struct {
	mu   sync.Mutex // guards data
	pub  sync.Mutex // orders publications to feed; taken before mu is released
	data map[string]entry
	feed *storage.Feed
}

type entry struct {
	n   uint64
	val *storage.VersionedDtab
}

// New returns a store holding the given namespaces, each at version 1.
func New(seed map[string]dtab.Dtab) *Store {
	s := &Store{data: map[string]entry{}, feed: storage.NewFeed()}
	all := map[string]*storage.VersionedDtab{}
	for ns, d := range seed {
		e := newEntry(1, d)
		s.data[ns] = e
		all[ns] = e.val
	}
	s.feed.Reset(all)
	return s
}

func newEntry(n uint64, d dtab.Dtab) entry {
	v := make(storage.Version, 8)
	binary.BigEndian.PutUint64(v, n)
	return entry{n: n, val: &storage.VersionedDtab{Dtab: slices.Clone(d), Version: v}}
}

// List implements storage.Store.
func (s *Store) List(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.data))
	for ns := range s.data {
		names = append(names, ns)
	}
	slices.Sort(names)
	return names, nil
}

// Get implements storage.Store.
func (s *Store) Get(_ context.Context, ns string) (storage.VersionedDtab, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.data[ns]
	if !ok {
		return storage.VersionedDtab{}, storage.ErrNotFound
	}
	return copyOf(e.val), nil
}

// Create implements storage.Store.
func (s *Store) Create(_ context.Context, ns string, d dtab.Dtab) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.data[ns]; ok {
		s.mu.Unlock()
		return storage.ErrExists
	}
	s.commit(ns, newEntry(1, d))
	return nil
}

// Update implements storage.Store.
func (s *Store) Update(_ context.Context, ns string, d dtab.Dtab, v storage.Version) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return err
	}
	s.mu.Lock()
	e, ok := s.data[ns]
	switch {
	case !ok:
		s.mu.Unlock()
		return storage.ErrNotFound
	case !e.val.Version.Equal(v):
		s.mu.Unlock()
		return storage.ErrVersionMismatch
	}
	s.commit(ns, newEntry(e.n+1, d))
	return nil
}

// Put implements storage.Store.
func (s *Store) Put(_ context.Context, ns string, d dtab.Dtab) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return err
	}
	s.mu.Lock()
	s.commit(ns, newEntry(s.data[ns].n+1, d))
	return nil
}

// Delete implements storage.Store.
func (s *Store) Delete(_ context.Context, ns string) error {
	s.mu.Lock()
	if _, ok := s.data[ns]; !ok {
		s.mu.Unlock()
		return storage.ErrNotFound
	}
	s.commit(ns, entry{})
	return nil
}

// commit stores e (e.val nil: delete) and publishes it. It is called with
// s.mu held and releases it: the lock is handed over to s.pub so observers
// run without s.mu (they may call Get or List) while publications keep the
// order of the writes.
func (s *Store) commit(ns string, e entry) {
	if e.val == nil {
		delete(s.data, ns)
	} else {
		s.data[ns] = e
	}
	s.pub.Lock()
	s.mu.Unlock()
	defer s.pub.Unlock()
	s.feed.Set(ns, e.val)
}

// Observe implements storage.Store.
func (s *Store) Observe(ns string) watch.Value[watch.Activity[storage.Observation]] {
	return s.feed.Observe(ns)
}

// ObserveList implements storage.Store.
func (s *Store) ObserveList() watch.Value[watch.Activity[[]string]] { return s.feed.ObserveList() }

// Close implements storage.Store; an in-memory store holds nothing to release.
func (s *Store) Close() error { return nil }

func copyOf(v *storage.VersionedDtab) storage.VersionedDtab {
	return storage.VersionedDtab{Dtab: slices.Clone(v.Dtab), Version: slices.Clone(v.Version)}
}

var _ storage.Store = (*Store)(nil)
