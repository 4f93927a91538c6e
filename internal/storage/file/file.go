// Package file is Linnet's durable embedded dtab store (kind io.linnet.file):
// one JSON file per namespace in a directory on local disk, no external
// service needed.
//
// Durability: a write is acknowledged only after the new file's contents
// and the directory entry pointing at it are on disk (write a temporary
// file, fsync it, rename it over the old one, fsync the directory). A crash
// at any point leaves either the old or the new dtab, never a torn one, and
// never loses an acknowledged write. Leftover temporary files are removed
// when the store is opened.
//
// The directory belongs to one process: Open takes an exclusive lock on
// DIR/.lock and fails if another namerd holds it. Observers are told about
// writes made through the Store; editing the files by hand while namerd runs
// is not supported.
//
// Versions are 16 bytes: an 8-byte incarnation chosen at random when the
// namespace is created, then an 8-byte big-endian write counter. A version
// therefore never repeats, even across delete and re-create, and survives
// restarts.
package file

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

const (
	fileSuffix = ".json"
	tmpPrefix  = ".tmp-"
	lockName   = ".lock"
	// maxFileName keeps encoded names within every common file system's
	// 255-byte limit, with room for the suffix.
	maxFileName = 240
)

// Store is a directory-backed storage.Store.
type Store struct {
	dir  string
	lock *os.File

	mu     sync.Mutex // guards data and closed; held during disk writes
	pub    sync.Mutex // orders publications to feed
	data   map[string]*storage.VersionedDtab
	closed bool
	feed   *storage.Feed
}

// record is the on-disk form of one namespace.
type record struct {
	Namespace string `json:"namespace"`
	Version   string `json:"version"`
	Dtab      string `json:"dtab"`
}

// Open opens (creating it if needed) the store in dir.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("file storage: empty directory path")
	}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("file storage: %w", err)
		}
		// Make the new directory's own entry durable, or a crash could lose
		// the directory with every write acknowledged in it.
		if err := syncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
			return nil, fmt.Errorf("file storage: syncing the parent of %s: %w", dir, err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("file storage: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("file storage: directory %s is in use by another process (lock %s held)", dir, lock.Name())
		}
		return nil, fmt.Errorf("file storage: locking %s: %w", lock.Name(), err)
	}
	s := &Store{dir: dir, lock: lock, data: map[string]*storage.VersionedDtab{}, feed: storage.NewFeed()}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	s.feed.Reset(s.data)
	return s, nil
}

// load reads every namespace file and removes leftover temporary files.
func (s *Store) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("file storage: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			// An unacknowledged write interrupted by a crash.
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("file storage: removing leftover %s: %w", name, err)
			}
			continue
		case name == lockName || !strings.HasSuffix(name, fileSuffix) || e.IsDir():
			continue
		}
		path := filepath.Join(s.dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("file storage: %w", err)
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("file storage: %s: %w", path, err)
		}
		if want := encodeName(r.Namespace) + fileSuffix; want != name {
			return fmt.Errorf("file storage: %s: holds namespace %q, whose file would be %s", path, r.Namespace, want)
		}
		v, err := storage.ParseVersion(r.Version)
		if err != nil || len(v) != 16 {
			return fmt.Errorf("file storage: %s: invalid version %q", path, r.Version)
		}
		d, err := dtab.Parse(r.Dtab)
		if err != nil {
			return fmt.Errorf("file storage: %s: invalid dtab: %w", path, err)
		}
		s.data[r.Namespace] = &storage.VersionedDtab{Dtab: d, Version: v}
	}
	return nil
}

// encodeName maps a namespace to a file name stem: bytes outside
// [A-Za-z0-9_-] (and '.' when it starts the name) become %XX, so every
// namespace has exactly one file and no name can escape the directory or
// hide as a dot file.
func encodeName(ns string) string {
	var b strings.Builder
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func checkNamespace(ns string) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return err
	}
	if len(encodeName(ns))+len(fileSuffix) > maxFileName {
		return &storage.InvalidNamespaceError{Namespace: ns, Reason: "too long for file storage once escaped"}
	}
	return nil
}

var errClosed = errors.New("file storage: store is closed")

// List implements storage.Store.
func (s *Store) List(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
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
	if s.closed {
		return storage.VersionedDtab{}, errClosed
	}
	v, ok := s.data[ns]
	if !ok {
		return storage.VersionedDtab{}, storage.ErrNotFound
	}
	return storage.VersionedDtab{Dtab: slices.Clone(v.Dtab), Version: slices.Clone(v.Version)}, nil
}

// Create implements storage.Store.
func (s *Store) Create(_ context.Context, ns string, d dtab.Dtab) error {
	return s.write(ns, func(cur *storage.VersionedDtab) (storage.Version, error) {
		if cur != nil {
			return nil, storage.ErrExists
		}
		return newVersion()
	}, d)
}

// Update implements storage.Store.
func (s *Store) Update(_ context.Context, ns string, d dtab.Dtab, v storage.Version) error {
	return s.write(ns, func(cur *storage.VersionedDtab) (storage.Version, error) {
		switch {
		case cur == nil:
			return nil, storage.ErrNotFound
		case !cur.Version.Equal(v):
			return nil, storage.ErrVersionMismatch
		}
		return nextVersion(cur.Version), nil
	}, d)
}

// Put implements storage.Store.
func (s *Store) Put(_ context.Context, ns string, d dtab.Dtab) error {
	return s.write(ns, func(cur *storage.VersionedDtab) (storage.Version, error) {
		if cur == nil {
			return newVersion()
		}
		return nextVersion(cur.Version), nil
	}, d)
}

// Delete implements storage.Store.
func (s *Store) Delete(_ context.Context, ns string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	if _, ok := s.data[ns]; !ok {
		s.mu.Unlock()
		return storage.ErrNotFound
	}
	if err := os.Remove(s.path(ns)); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("file storage: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		// The file is gone from the directory as seen by this process; report
		// the durability failure but keep memory consistent with the disk.
		delete(s.data, ns)
		s.publish(ns, nil)
		return fmt.Errorf("file storage: deleting %q: %w", ns, err)
	}
	delete(s.data, ns)
	s.publish(ns, nil)
	return nil
}

// write stores d under ns with the version next returns for the current
// value (or an error that aborts the write).
func (s *Store) write(ns string, next func(cur *storage.VersionedDtab) (storage.Version, error), d dtab.Dtab) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	v, err := next(s.data[ns])
	if err != nil {
		s.mu.Unlock()
		return err
	}
	val := &storage.VersionedDtab{Dtab: slices.Clone(d), Version: v}
	renamed, err := s.writeFile(ns, val)
	if !renamed {
		s.mu.Unlock()
		return err
	}
	// Once renamed, the new file is what a reader of the directory (and this
	// process) sees, even if syncing the directory failed: keep memory in
	// step with it, but do not acknowledge an undurable write.
	s.data[ns] = val
	s.publish(ns, val)
	return err
}

// publish is called with s.mu held and releases it, handing over to s.pub
// so that observers run without s.mu while keeping the order of writes.
func (s *Store) publish(ns string, v *storage.VersionedDtab) {
	s.pub.Lock()
	s.mu.Unlock()
	defer s.pub.Unlock()
	s.feed.Set(ns, v)
}

func (s *Store) path(ns string) string {
	return filepath.Join(s.dir, encodeName(ns)+fileSuffix)
}

// writeFile replaces ns's file atomically and durably. renamed reports
// whether the new file replaced the old one (err then concerns durability).
func (s *Store) writeFile(ns string, v *storage.VersionedDtab) (renamed bool, err error) {
	b, err := json.Marshal(record{Namespace: ns, Version: v.Version.String(), Dtab: v.Dtab.String()})
	if err != nil {
		return false, fmt.Errorf("file storage: %w", err)
	}
	b = append(b, '\n')
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return false, fmt.Errorf("file storage: %w", err)
	}
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(b); err != nil {
		return false, fmt.Errorf("file storage: writing %q: %w", ns, err)
	}
	if err = f.Sync(); err != nil {
		return false, fmt.Errorf("file storage: syncing %q: %w", ns, err)
	}
	if err = f.Close(); err != nil {
		return false, fmt.Errorf("file storage: writing %q: %w", ns, err)
	}
	if err = os.Rename(f.Name(), s.path(ns)); err != nil {
		return false, fmt.Errorf("file storage: %w", err)
	}
	if err = syncDir(s.dir); err != nil {
		return true, fmt.Errorf("file storage: syncing directory for %q: %w", ns, err)
	}
	return true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func newVersion() (storage.Version, error) {
	v := make(storage.Version, 16)
	if _, err := rand.Read(v[:8]); err != nil {
		return nil, fmt.Errorf("file storage: %w", err)
	}
	binary.BigEndian.PutUint64(v[8:], 1)
	return v, nil
}

func nextVersion(cur storage.Version) storage.Version {
	v := slices.Clone(cur)
	binary.BigEndian.PutUint64(v[8:], binary.BigEndian.Uint64(v[8:])+1)
	return v
}

// Observe implements storage.Store.
func (s *Store) Observe(ns string) watch.Value[watch.Activity[storage.Observation]] {
	return s.feed.Observe(ns)
}

// ObserveList implements storage.Store.
func (s *Store) ObserveList() watch.Value[watch.Activity[[]string]] { return s.feed.ObserveList() }

// Close releases the directory lock. Later calls fail; Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close() // closing the descriptor releases the flock
}

var _ storage.Store = (*Store)(nil)
