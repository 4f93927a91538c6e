// Package storage is the contract between namerd and the places it keeps
// dtabs: the Store interface (Linkerd's DtabStore), its errors, versions,
// and the Config extension point storage kinds register with
// config.Register[storage.Config]. Backends live in the sub-packages
// (memory, file, etcd, k8s) and all pass storagetest.Run.
//
// Invariants every Store keeps:
//   - Versions are opaque byte strings; a successful write always produces a
//     version different from every version the namespace had since it was
//     last created, so compare-and-swap with Update is safe.
//   - Update is atomic: of several concurrent Updates with the same expected
//     version, at most one succeeds; the others get ErrVersionMismatch.
//   - A write acknowledged (nil error) is visible to every later Get and
//     List, and is eventually delivered to every Observe subscriber.
//   - Values published by Observe and ObserveList are shared and must be
//     treated as immutable.
package storage

import (
	"context"
	"encoding/base64"
	"log/slog"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Version identifies one revision of a namespace's dtab. It is opaque: only
// equality means anything. On the wire (ETag, If-Match) it is standard
// base64 with padding (spec/namerd-api.md §5).
type Version []byte

// String returns the wire form of v: standard base64 with padding.
func (v Version) String() string { return base64.StdEncoding.EncodeToString(v) }

// ParseVersion decodes the wire form of a version. A token that does not
// decode returns an error; callers treat it as "does not match".
func ParseVersion(s string) (Version, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return Version(b), nil
}

// Equal reports whether v and w are the same version, byte for byte.
func (v Version) Equal(w Version) bool { return string(v) == string(w) }

// VersionedDtab is a namespace's dtab together with its version.
type VersionedDtab struct {
	Dtab    dtab.Dtab
	Version Version
}

// Observation is what Observe publishes: nil while the namespace does not
// exist, otherwise its current dtab. It is shared: never modify it.
type Observation = *VersionedDtab

// Store keeps one dtab per namespace. All methods are safe for concurrent
// use. Errors that callers act on are ErrNotFound, ErrExists,
// ErrVersionMismatch, ErrInvalidNamespace and ErrForbidden (test them with
// errors.Is); any other error is a storage failure.
type Store interface {
	// List returns the names of all namespaces, sorted ascending.
	List(ctx context.Context) ([]string, error)
	// Get returns the namespace's current dtab and version, or ErrNotFound.
	Get(ctx context.Context, ns string) (VersionedDtab, error)
	// Create stores d under a new namespace; ErrExists if it exists.
	Create(ctx context.Context, ns string, d dtab.Dtab) error
	// Update replaces the dtab if its current version equals v:
	// ErrNotFound if the namespace does not exist, ErrVersionMismatch if the
	// version differs.
	Update(ctx context.Context, ns string, d dtab.Dtab, v Version) error
	// Put stores d unconditionally, creating the namespace if needed.
	Put(ctx context.Context, ns string, d dtab.Dtab) error
	// Delete removes the namespace; ErrNotFound if it does not exist.
	Delete(ctx context.Context, ns string) error

	// Observe watches one namespace. The value is Pending until the store
	// knows the state, then Ok with nil (absent) or the current dtab, or
	// Failed while the store cannot observe it. Backends release their
	// underlying watch when the last subscriber cancels, or keep one shared
	// watch for the whole store.
	Observe(ns string) watch.Value[watch.Activity[Observation]]
	// ObserveList watches the sorted list of namespace names.
	ObserveList() watch.Value[watch.Activity[[]string]]

	// Close releases the store's resources; observations stop changing.
	Close() error
}

// Env is what a store is built with.
type Env struct {
	// Ctx is cancelled when namerd shuts down.
	Ctx    context.Context
	Logger *slog.Logger
}

// Config is the `storage:` block of namerd.yaml. Each kind registers a
// constructor of its config struct with config.Register[storage.Config];
// the struct embeds Common.
type Config interface {
	// NewStore opens the store. The caller Closes it.
	NewStore(env Env) (Store, error)
}

// Common holds the keys every storage kind accepts.
type Common struct {
	// Experimental is accepted for compatibility (Linkerd requires it on
	// some kinds, e.g. io.l5d.etcd).
	Experimental bool `yaml:"experimental"`
}
