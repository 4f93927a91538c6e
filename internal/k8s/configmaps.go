package k8s

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// ConfigMap is one observation of a watched ConfigMap: its data when it
// exists, or why it cannot be known.
type ConfigMap struct {
	// Exists is false when the API answered that there is no such
	// ConfigMap (or it was deleted).
	Exists bool
	// Data is the ConfigMap's data (not binaryData). Shared: do not modify.
	Data map[string]string
	// Err is set when the API could not be read before the ConfigMap was
	// first known; Exists and Data are then meaningless.
	Err error
}

func (c *Cluster) configMaps() resources { return resources{c.api.core, "configmaps", c.api.params} }

// WatchConfigMap follows ConfigMap ns/name: a list/watch of that one
// object (by field selector, not an informer over the namespace). f is
// called with its state after the first listing and after every change of
// its data, one call at a time; also with Err while the API cannot be
// read before the first listing. The watch stops when cancel is called
// (f is not running once it returns) or the cluster stops.
func (c *Cluster) WatchConfigMap(ns, name string, f func(ConfigMap)) (cancel func()) {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			l := &corev1.ConfigMapList{}
			return l, c.configMaps().list(ctx, ns, o, l)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return c.configMaps().watch(ctx, ns, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 0, cache.Indexers{})
	_ = inf.SetTransform(stripMeta)
	w := &cmWatch{f: f, key: ns + "/" + name, store: inf.GetStore(), stop: make(chan struct{})}
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		c.watchError(ctx, r, err)
		if !errors.Is(err, context.Canceled) {
			w.fail(fmt.Errorf("k8s: cannot read ConfigMap %s from the API at %s: %w", w.key, c.conn, err))
		}
	})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.deliver() },
		UpdateFunc: func(_, _ any) { w.deliver() },
		DeleteFunc: func(any) { w.deliver() },
	})
	go func() {
		select {
		case <-c.stop: // the cluster was released: stop the informer too
		case <-w.stop:
		}
		w.cancel()
	}()
	go inf.Run(w.stop)
	go func() {
		if cache.WaitForCacheSync(w.stop, inf.HasSynced) {
			w.mu.Lock()
			w.synced = true
			w.mu.Unlock()
			w.deliver()
		}
	}()
	return w.cancel
}

// cmWatch delivers the state of the store, so that the order in which the
// informer's events and the sync arrive does not matter.
type cmWatch struct {
	f     func(ConfigMap)
	key   string
	store cache.Store
	stop  chan struct{}
	once  sync.Once

	mu        sync.Mutex // held while f runs
	closed    bool
	synced    bool
	delivered bool
	last      ConfigMap
}

func (w *cmWatch) deliver() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	var cm ConfigMap
	if obj, ok, _ := w.store.GetByKey(w.key); ok {
		if o, isCM := obj.(*corev1.ConfigMap); isCM {
			cm = ConfigMap{Exists: true, Data: o.Data}
		}
	}
	if !cm.Exists && !w.synced {
		return // not listed yet
	}
	if w.delivered && w.last.Err == nil && cm.Exists == w.last.Exists && maps.Equal(cm.Data, w.last.Data) {
		return
	}
	w.delivered, w.last = true, cm
	w.f(cm)
}

func (w *cmWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || (w.delivered && w.last.Err == nil) {
		return // the last state stands while the watch recovers
	}
	w.delivered, w.last = true, ConfigMap{Err: err}
	w.f(w.last)
}

func (w *cmWatch) cancel() {
	w.once.Do(func() { close(w.stop) })
	w.close()
}

func (w *cmWatch) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
