package k8s

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	kwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/linnet-mesh/linnet/internal/dtab"
	kapi "github.com/linnet-mesh/linnet/internal/k8s"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// The DTab custom resource.
var (
	GVR        = schema.GroupVersionResource{Group: "l5d.io", Version: "v1alpha1", Resource: "dtabs"}
	APIVersion = "l5d.io/v1alpha1"
	KindDTab   = "DTab"
)

// Store keeps dtabs as DTab objects in one Kubernetes namespace.
type Store struct {
	ns     string
	res    dynamic.ResourceInterface
	logger *slog.Logger
	feed   *storage.Feed
	feedMu sync.Mutex // serialises Feed updates (informer handler vs. initial Reset)
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

// New opens a store on conn keeping dtabs in Kubernetes namespace ns.
func New(conn kapi.Conn, ns string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	cfg, err := conn.RESTConfig()
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("k8s: %s: %w", conn, err)
	}
	s := &Store{
		ns:     ns,
		res:    dc.Resource(GVR).Namespace(ns),
		logger: logger.With("storage", "io.l5d.k8s", "namespace", ns),
		feed:   storage.NewFeed(),
		stop:   make(chan struct{}),
	}
	s.startWatch()
	return s, nil
}

func (s *Store) startWatch() {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return s.res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (kwatch.Interface, error) {
			return s.res.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		if errors.Is(err, context.Canceled) {
			return
		}
		s.logger.Warn("dtab watch failed; retrying", "error", err)
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			// The CRD is missing or RBAC refuses: observers must know.
			s.feedMu.Lock()
			s.feed.Fail(fmt.Errorf("io.l5d.k8s: watching dtabs in %s: %w", s.ns, err))
			s.feedMu.Unlock()
		}
	})
	set := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		s.feedMu.Lock()
		defer s.feedMu.Unlock()
		vd, err := decode(u)
		if err != nil {
			s.feed.SetError(u.GetName(), err)
			return
		}
		s.feed.Set(u.GetName(), &vd)
	}
	reg, _ := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				s.feedMu.Lock()
				s.feed.Set(u.GetName(), nil)
				s.feedMu.Unlock()
			}
		},
	})
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		inf.Run(s.stop)
	}()
	go func() {
		defer s.wg.Done()
		if !cache.WaitForCacheSync(s.stop, reg.HasSynced) {
			return
		}
		s.feedMu.Lock()
		defer s.feedMu.Unlock()
		all := map[string]*storage.VersionedDtab{}
		var bad []*unstructured.Unstructured
		for _, o := range inf.GetStore().List() {
			u := o.(*unstructured.Unstructured)
			vd, err := decode(u)
			if err != nil {
				bad = append(bad, u)
				continue
			}
			all[u.GetName()] = &vd
		}
		s.feed.Reset(all)
		for _, u := range bad {
			_, err := decode(u)
			s.feed.SetError(u.GetName(), err)
		}
	}()
}

// checkName applies storage's rules, then Kubernetes' object-name rules.
func checkName(ns string) error {
	if err := storage.CheckNamespace(ns); err != nil {
		return err
	}
	if errs := validation.IsDNS1123Subdomain(ns); len(errs) > 0 {
		return &storage.InvalidNamespaceError{Namespace: ns, Reason: "not a Kubernetes object name: " + errs[0]}
	}
	return nil
}

// apiError maps Kubernetes API errors to storage errors.
func (s *Store) apiError(op, ns string, err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %s", storage.ErrNotFound, ns)
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%w: %s", storage.ErrExists, ns)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%w: %s", storage.ErrVersionMismatch, ns)
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return &storage.ForbiddenError{
			Reason: fmt.Sprintf("Kubernetes refused %s %s in namespace %s: %v", op, ns, s.ns, err),
			Err:    err,
		}
	case apierrors.IsInvalid(err):
		return &storage.InvalidNamespaceError{Namespace: ns, Reason: err.Error()}
	}
	return fmt.Errorf("io.l5d.k8s: %s %s in Kubernetes namespace %s: %w", op, ns, s.ns, err)
}

// List implements storage.Store.
func (s *Store) List(ctx context.Context) ([]string, error) {
	l, err := s.res.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, s.apiError("list", "", err)
	}
	names := make([]string, 0, len(l.Items))
	for _, it := range l.Items {
		names = append(names, it.GetName())
	}
	slices.Sort(names)
	return names, nil
}

// Get implements storage.Store.
func (s *Store) Get(ctx context.Context, ns string) (storage.VersionedDtab, error) {
	if err := checkName(ns); err != nil {
		// No object can have that name.
		if errors.Is(err, storage.ErrInvalidNamespace) && ns != "" {
			return storage.VersionedDtab{}, fmt.Errorf("%w: %s", storage.ErrNotFound, ns)
		}
		return storage.VersionedDtab{}, err
	}
	u, err := s.res.Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return storage.VersionedDtab{}, s.apiError("get", ns, err)
	}
	return decode(u)
}

// Create implements storage.Store.
func (s *Store) Create(ctx context.Context, ns string, d dtab.Dtab) error {
	if err := checkName(ns); err != nil {
		return err
	}
	_, err := s.res.Create(ctx, encode(ns, d, ""), metav1.CreateOptions{})
	return s.apiError("create", ns, err)
}

// Update implements storage.Store.
func (s *Store) Update(ctx context.Context, ns string, d dtab.Dtab, v storage.Version) error {
	if err := checkName(ns); err != nil {
		if ns != "" {
			return fmt.Errorf("%w: %s", storage.ErrNotFound, ns)
		}
		return err
	}
	if !isResourceVersion(v) {
		// An empty resourceVersion would not be checked by the server, and
		// a malformed one is refused; neither is the current version.
		if _, err := s.res.Get(ctx, ns, metav1.GetOptions{}); err != nil {
			return s.apiError("update", ns, err)
		}
		return fmt.Errorf("%w: %s", storage.ErrVersionMismatch, ns)
	}
	_, err := s.res.Update(ctx, encode(ns, d, string(v)), metav1.UpdateOptions{})
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		// A malformed resourceVersion is simply not the current one.
		return fmt.Errorf("%w: %s", storage.ErrVersionMismatch, ns)
	}
	return s.apiError("update", ns, err)
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, ns string, d dtab.Dtab) error {
	if err := checkName(ns); err != nil {
		return err
	}
	for {
		u, err := s.res.Get(ctx, ns, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = s.res.Create(ctx, encode(ns, d, ""), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // created meanwhile: update it
			}
			return s.apiError("put", ns, err)
		case err != nil:
			return s.apiError("put", ns, err)
		}
		_, err = s.res.Update(ctx, encode(ns, d, u.GetResourceVersion()), metav1.UpdateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // changed or deleted meanwhile: try again
		}
		return s.apiError("put", ns, err)
	}
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, ns string) error {
	if err := checkName(ns); err != nil {
		if ns != "" {
			return fmt.Errorf("%w: %s", storage.ErrNotFound, ns)
		}
		return err
	}
	return s.apiError("delete", ns, s.res.Delete(ctx, ns, metav1.DeleteOptions{}))
}

// Observe implements storage.Store.
func (s *Store) Observe(ns string) watch.Value[watch.Activity[storage.Observation]] {
	return s.feed.Observe(ns)
}

// ObserveList implements storage.Store.
func (s *Store) ObserveList() watch.Value[watch.Activity[[]string]] { return s.feed.ObserveList() }

// Close implements storage.Store.
func (s *Store) Close() error {
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
	})
	return nil
}

// encode builds the DTab object.
func encode(name string, d dtab.Dtab, rv string) *unstructured.Unstructured {
	dentries := make([]any, len(d))
	for i, e := range d {
		dentries[i] = map[string]any{"prefix": e.Prefix.String(), "dst": dtab.ShowTree(e.Dst)}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": APIVersion,
		"kind":       KindDTab,
		"metadata":   map[string]any{"name": name},
		"dentries":   dentries,
	}}
	if rv != "" {
		u.SetResourceVersion(rv)
		// The API server skips writes that change nothing and keeps the
		// resourceVersion; a fresh nonce makes every write a new version,
		// as storage.Store requires.
		u.SetAnnotations(map[string]string{WriteAnnotation: nonce()})
	}
	return u
}

// WriteAnnotation holds a nonce that changes on every update.
const WriteAnnotation = "l5d.io/write-nonce"

func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// isResourceVersion reports whether v looks like a resourceVersion (the
// API server's are decimal; the format is opaque but never empty).
func isResourceVersion(v storage.Version) bool {
	if len(v) == 0 || len(v) > 64 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// decode reads a DTab object.
func decode(u *unstructured.Unstructured) (storage.VersionedDtab, error) {
	vd := storage.VersionedDtab{Version: storage.Version(u.GetResourceVersion())}
	raw, found, err := unstructured.NestedSlice(u.Object, "dentries")
	if err != nil {
		return vd, fmt.Errorf("io.l5d.k8s: dtab %s: dentries: %w", u.GetName(), err)
	}
	if !found {
		return vd, nil
	}
	vd.Dtab = make(dtab.Dtab, 0, len(raw))
	for i, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return vd, fmt.Errorf("io.l5d.k8s: dtab %s: dentries[%d] is not an object", u.GetName(), i)
		}
		ps, _ := m["prefix"].(string)
		ds, _ := m["dst"].(string)
		p, err := dtab.ParsePrefix(ps)
		if err != nil {
			return vd, fmt.Errorf("io.l5d.k8s: dtab %s: dentries[%d].prefix %q: %w", u.GetName(), i, ps, err)
		}
		t, err := dtab.ParseTree(ds)
		if err != nil {
			return vd, fmt.Errorf("io.l5d.k8s: dtab %s: dentries[%d].dst %q: %w", u.GetName(), i, ds, err)
		}
		vd.Dtab = append(vd.Dtab, dtab.Dentry{Prefix: p, Dst: t})
	}
	return vd, nil
}
