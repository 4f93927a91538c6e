package k8s

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// EndpointsAPI selects the resource endpoints are read from.
type EndpointsAPI string

// EndpointsAPI values.
const (
	// EndpointsAuto uses discovery.k8s.io/v1 EndpointSlices when the API
	// server serves them, else v1 Endpoints.
	EndpointsAuto   EndpointsAPI = ""
	EndpointSlices  EndpointsAPI = "endpointslices"
	EndpointsLegacy EndpointsAPI = "endpoints"
)

// Options are the per-process choices of a Cluster that are not part of how
// to connect. Clusters with different Options are not shared.
type Options struct {
	Endpoints EndpointsAPI
}

// Cluster is a shared, lazily started set of informers on one API server.
// Get one with Acquire.
type Cluster struct {
	conn   Conn
	opts   Options
	cfg    *rest.Config
	api    *apiGroups
	logger *slog.Logger
	stop   chan struct{}
	key    string
	refs   int // guarded by registry.mu

	endpointsOnce sync.Once
	slices        bool // which API the endpoints informer reads; set in startEndpoints
	epInformer    cache.SharedIndexInformer
	svcInformer   cache.SharedIndexInformer
	epDecided     chan struct{} // closed once slices is set
	epSynced      chan struct{}
	epErr         atomic.Pointer[error]

	ingressOnce     sync.Once
	ingInformer     cache.SharedIndexInformer
	ingSynced       chan struct{}
	ingErr          atomic.Pointer[error]
	ingMu           sync.Mutex
	ingSeq          map[string]uint64
	ingNext         uint64
	serviceListener listeners[ServiceKey]
	ingressListener listeners[struct{}]
}

// ServiceKey names a Service. Namespace "" with Name "" means "everything
// may have changed" (sent once when the caches first sync).
type ServiceKey struct{ Namespace, Name string }

var klogOnce sync.Once

var registry struct {
	mu       sync.Mutex
	clusters map[string]*Cluster
}

// Acquire returns the Cluster for conn and opts, creating it on first use.
// The caller holds a reference until ctx is done; the informers stop when
// the last holder's context ends.
func Acquire(ctx context.Context, conn Conn, opts Options, logger *slog.Logger) (*Cluster, error) {
	if logger == nil {
		logger = slog.Default()
	}
	klogOnce.Do(func() {
		// client-go logs through klog; send that to the process's logger
		// instead of klog's own format on stderr.
		klog.SetSlogLogger(logger.With("component", "client-go"))
	})
	key := conn.Key() + "|" + string(opts.Endpoints)
	registry.mu.Lock()
	defer registry.mu.Unlock()
	c := registry.clusters[key]
	if c == nil {
		cfg, err := conn.RESTConfig()
		if err != nil {
			return nil, err
		}
		c, err = newCluster(conn, opts, cfg, logger)
		if err != nil {
			return nil, err
		}
		c.key = key
		if registry.clusters == nil {
			registry.clusters = map[string]*Cluster{}
		}
		registry.clusters[key] = c
	}
	c.refs++
	go func() {
		<-ctx.Done()
		registry.mu.Lock()
		defer registry.mu.Unlock()
		c.refs--
		if c.refs == 0 {
			close(c.stop)
			delete(registry.clusters, c.key)
		}
	}()
	return c, nil
}

func newCluster(conn Conn, opts Options, cfg *rest.Config, logger *slog.Logger) (*Cluster, error) {
	// Built-in types speak protobuf: smaller and cheaper to decode than JSON.
	pcfg := rest.CopyConfig(cfg)
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	api, err := newAPIGroups(pcfg)
	if err != nil {
		return nil, fmt.Errorf("k8s: %s: %w", conn, err)
	}
	return &Cluster{
		conn: conn, opts: opts, cfg: cfg, api: api,
		logger:    logger.With("k8s", conn.String()),
		stop:      make(chan struct{}),
		epSynced:  make(chan struct{}),
		epDecided: make(chan struct{}),
		ingSynced: make(chan struct{}),
		ingSeq:    map[string]uint64{},
	}, nil
}

// Conn returns how the cluster is reached.
func (c *Cluster) Conn() Conn { return c.conn }

// Stopped is closed when the last holder has released the cluster.
func (c *Cluster) Stopped() <-chan struct{} { return c.stop }

// ---- listeners ----

type listeners[T any] struct {
	mu   sync.Mutex
	next uint64
	fs   map[uint64]func(T)
}

func (l *listeners[T]) add(f func(T)) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fs == nil {
		l.fs = map[uint64]func(T){}
	}
	id := l.next
	l.next++
	l.fs[id] = f
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.fs, id)
			l.mu.Unlock()
		})
	}
}

func (l *listeners[T]) call(v T) {
	l.mu.Lock()
	fs := make([]func(T), 0, len(l.fs))
	for _, f := range l.fs {
		fs = append(fs, f)
	}
	l.mu.Unlock()
	for _, f := range fs {
		f(v)
	}
}

// Logger returns the cluster's logger.
func (c *Cluster) Logger() *slog.Logger { return c.logger }
