package k8s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	typeddiscoveryv1 "k8s.io/client-go/kubernetes/typed/discovery/v1"
	typednetworkingv1 "k8s.io/client-go/kubernetes/typed/networking/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
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
	core   typedcorev1.CoreV1Interface
	disc   typeddiscoveryv1.DiscoveryV1Interface
	netv1  typednetworkingv1.NetworkingV1Interface
	logger *slog.Logger
	stop   chan struct{}
	key    string
	refs   int // guarded by registry.mu

	endpointsOnce sync.Once
	slices        bool // which API the endpoints informer reads; set in startEndpoints
	epInformer    cache.SharedIndexInformer
	svcInformer   cache.SharedIndexInformer
	epSynced      chan struct{}

	ingressOnce     sync.Once
	ingInformer     cache.SharedIndexInformer
	ingSynced       chan struct{}
	ingMu           sync.Mutex
	ingSeq          map[string]uint64
	ingNext         uint64
	serviceListener listeners[ServiceKey]
	ingressListener listeners[struct{}]
}

// ServiceKey names a Service. Namespace "" with Name "" means "everything
// may have changed" (sent once when the caches first sync).
type ServiceKey struct{ Namespace, Name string }

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
	core, err := typedcorev1.NewForConfig(pcfg)
	if err != nil {
		return nil, fmt.Errorf("k8s: %s: %w", conn, err)
	}
	disc, err := typeddiscoveryv1.NewForConfig(pcfg)
	if err != nil {
		return nil, fmt.Errorf("k8s: %s: %w", conn, err)
	}
	netv1, err := typednetworkingv1.NewForConfig(pcfg)
	if err != nil {
		return nil, fmt.Errorf("k8s: %s: %w", conn, err)
	}
	return &Cluster{
		conn: conn, opts: opts, cfg: cfg, core: core, disc: disc, netv1: netv1,
		logger:    logger.With("k8s", conn.String()),
		stop:      make(chan struct{}),
		epSynced:  make(chan struct{}),
		ingSynced: make(chan struct{}),
		ingSeq:    map[string]uint64{},
	}, nil
}

// Conn returns how the cluster is reached.
func (c *Cluster) Conn() Conn { return c.conn }

// Stopped is closed when the last holder has released the cluster.
func (c *Cluster) Stopped() <-chan struct{} { return c.stop }

// ---- endpoints and services ----

// WatchServices starts the endpoint and service informers if needed and
// calls f (from an informer goroutine) with the key of every Service whose
// Service object or endpoints change. f must be quick. Once, after the
// first full sync, f is called with the zero ServiceKey.
func (c *Cluster) WatchServices(f func(ServiceKey)) (cancel func()) {
	cancel = c.serviceListener.add(f)
	c.endpointsOnce.Do(c.startEndpoints)
	return cancel
}

// EndpointsSynced is closed once the endpoint and service caches hold a
// full listing.
func (c *Cluster) EndpointsSynced() <-chan struct{} { return c.epSynced }

// UsesEndpointSlices reports which API endpoints are read from (valid after
// the first WatchServices call).
func (c *Cluster) UsesEndpointSlices() bool {
	c.endpointsOnce.Do(c.startEndpoints)
	return c.slices
}

const serviceIndex = "service"

func (c *Cluster) startEndpoints() {
	switch c.opts.Endpoints {
	case EndpointSlices:
		c.slices = true
	case EndpointsLegacy:
		c.slices = false
	default:
		c.slices = c.servesEndpointSlices()
	}
	if c.slices {
		lw := &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.disc.EndpointSlices(metav1.NamespaceAll).List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.disc.EndpointSlices(metav1.NamespaceAll).Watch(ctx, o)
			},
		}
		c.epInformer = cache.NewSharedIndexInformer(lw, &discoveryv1.EndpointSlice{}, 0, cache.Indexers{
			serviceIndex: func(obj any) ([]string, error) {
				s, ok := obj.(*discoveryv1.EndpointSlice)
				if !ok {
					return nil, nil
				}
				svc := s.Labels[discoveryv1.LabelServiceName]
				if svc == "" {
					return nil, nil
				}
				return []string{s.Namespace + "/" + svc}, nil
			},
		})
	} else {
		lw := &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.core.Endpoints(metav1.NamespaceAll).List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.core.Endpoints(metav1.NamespaceAll).Watch(ctx, o)
			},
		}
		c.epInformer = cache.NewSharedIndexInformer(lw, &corev1.Endpoints{}, 0, cache.Indexers{})
	}
	svcLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.core.Services(metav1.NamespaceAll).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.core.Services(metav1.NamespaceAll).Watch(ctx, o)
		},
	}
	c.svcInformer = cache.NewSharedIndexInformer(svcLW, &corev1.Service{}, 0, cache.Indexers{})
	for _, inf := range []cache.SharedIndexInformer{c.epInformer, c.svcInformer} {
		_ = inf.SetTransform(stripMeta)
		_ = inf.SetWatchErrorHandlerWithContext(c.watchError)
	}
	notify := func(obj any) {
		if k, ok := c.serviceKeyOf(obj); ok {
			c.serviceListener.call(k)
		}
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { notify(obj) },
		UpdateFunc: func(_, obj any) { notify(obj) },
		DeleteFunc: func(obj any) { notify(obj) },
	}
	_, _ = c.epInformer.AddEventHandler(h)
	_, _ = c.svcInformer.AddEventHandler(h)
	go c.epInformer.Run(c.stop)
	go c.svcInformer.Run(c.stop)
	go func() {
		if cache.WaitForCacheSync(c.stop, c.epInformer.HasSynced, c.svcInformer.HasSynced) {
			close(c.epSynced)
			c.serviceListener.call(ServiceKey{})
		}
	}()
}

// servesEndpointSlices asks the API server whether discovery.k8s.io/v1 is
// served. Any answer but a clear 404 counts as yes (the informer then
// reports its own errors).
func (c *Cluster) servesEndpointSlices() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.core.RESTClient().Get().AbsPath("/apis/discovery.k8s.io/v1").Do(ctx).Error()
	if err != nil && apierrors.IsNotFound(err) {
		c.logger.Info("k8s: discovery.k8s.io/v1 not served; reading v1 Endpoints")
		return false
	}
	return true
}

func (c *Cluster) watchError(_ context.Context, r *cache.Reflector, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	c.logger.Warn("k8s: watch failed; retrying", "error", err)
}

func (c *Cluster) serviceKeyOf(obj any) (ServiceKey, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	switch o := obj.(type) {
	case *corev1.Service:
		return ServiceKey{o.Namespace, o.Name}, true
	case *corev1.Endpoints:
		return ServiceKey{o.Namespace, o.Name}, true
	case *discoveryv1.EndpointSlice:
		svc := o.Labels[discoveryv1.LabelServiceName]
		return ServiceKey{o.Namespace, svc}, svc != ""
	}
	return ServiceKey{}, false
}

// stripMeta drops what the caches never read, to keep them small.
func stripMeta(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		if _, isIng := obj.(*networkingv1.Ingress); !isIng {
			m.SetAnnotations(nil)
		}
	}
	return obj, nil
}

// Endpoints returns the endpoints of Service ns/name, and whether any
// endpoints object exists for it.
func (c *Cluster) Endpoints(ns, name string) (Endpoints, bool) {
	c.endpointsOnce.Do(c.startEndpoints)
	ep := Endpoints{Namespace: ns, Service: name}
	if c.slices {
		objs, err := c.epInformer.GetIndexer().ByIndex(serviceIndex, ns+"/"+name)
		if err != nil || len(objs) == 0 {
			return ep, false
		}
		// Stable order, so address lists do not churn.
		sort.Slice(objs, func(i, j int) bool {
			return objs[i].(*discoveryv1.EndpointSlice).Name < objs[j].(*discoveryv1.EndpointSlice).Name
		})
		for _, o := range objs {
			s := o.(*discoveryv1.EndpointSlice)
			if s.AddressType == discoveryv1.AddressTypeFQDN {
				continue
			}
			for k, v := range s.Labels {
				if ep.Labels == nil {
					ep.Labels = map[string]string{}
				}
				ep.Labels[k] = v
			}
			ep.Groups = append(ep.Groups, sliceGroup(s))
		}
		return ep, true
	}
	o, ok, err := c.epInformer.GetIndexer().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return ep, false
	}
	e := o.(*corev1.Endpoints)
	ep.Labels = e.Labels
	for _, ss := range e.Subsets {
		ep.Groups = append(ep.Groups, subsetGroup(ss))
	}
	return ep, true
}

func sliceGroup(s *discoveryv1.EndpointSlice) EndpointGroup {
	var g EndpointGroup
	for _, p := range s.Ports {
		ep := EndpointPort{Protocol: "TCP"}
		if p.Name != nil {
			ep.Name = *p.Name
		}
		if p.Port != nil {
			ep.Port = *p.Port
		}
		if p.Protocol != nil {
			ep.Protocol = string(*p.Protocol)
		}
		g.Ports = append(g.Ports, ep)
	}
	for _, e := range s.Endpoints {
		// A nil ready condition means ready (discovery/v1 API contract);
		// a terminating endpoint is never ready.
		ready := e.Conditions.Ready == nil || *e.Conditions.Ready
		if e.Conditions.Terminating != nil && *e.Conditions.Terminating {
			ready = false
		}
		for _, ip := range e.Addresses {
			a := EndpointAddress{IP: ip}
			if e.NodeName != nil {
				a.NodeName = *e.NodeName
			}
			if e.Hostname != nil {
				a.Hostname = *e.Hostname
			}
			if e.Zone != nil {
				a.Zone = *e.Zone
			}
			if ready {
				g.Ready = append(g.Ready, a)
			} else {
				g.NotReady = append(g.NotReady, a)
			}
		}
	}
	return g
}

func subsetGroup(ss corev1.EndpointSubset) EndpointGroup {
	var g EndpointGroup
	for _, p := range ss.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = "TCP"
		}
		g.Ports = append(g.Ports, EndpointPort{Name: p.Name, Port: p.Port, Protocol: proto})
	}
	conv := func(as []corev1.EndpointAddress) []EndpointAddress {
		var out []EndpointAddress
		for _, a := range as {
			ea := EndpointAddress{IP: a.IP, Hostname: a.Hostname}
			if a.NodeName != nil {
				ea.NodeName = *a.NodeName
			}
			out = append(out, ea)
		}
		return out
	}
	g.Ready = conv(ss.Addresses)
	g.NotReady = conv(ss.NotReadyAddresses)
	return g
}

// Service returns Service ns/name and whether it exists.
func (c *Cluster) Service(ns, name string) (Service, bool) {
	c.endpointsOnce.Do(c.startEndpoints)
	o, ok, err := c.svcInformer.GetIndexer().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return Service{}, false
	}
	return convService(o.(*corev1.Service)), true
}

func convService(s *corev1.Service) Service {
	out := Service{Namespace: s.Namespace, Name: s.Name, Labels: s.Labels, Type: string(s.Spec.Type)}
	for _, p := range s.Spec.Ports {
		sp := ServicePort{Name: p.Name, Port: p.Port, Protocol: string(p.Protocol)}
		if sp.Protocol == "" {
			sp.Protocol = "TCP"
		}
		switch {
		case p.TargetPort.Type == intstr.String:
			sp.TargetPortName = p.TargetPort.StrVal
		case p.TargetPort.IntVal != 0:
			sp.TargetPortNumber = p.TargetPort.IntVal
		default:
			sp.TargetPortNumber = p.Port
		}
		out.Ports = append(out.Ports, sp)
	}
	for _, in := range s.Status.LoadBalancer.Ingress {
		switch {
		case in.IP != "":
			out.LoadBalancer = append(out.LoadBalancer, in.IP)
		case in.Hostname != "":
			out.LoadBalancer = append(out.LoadBalancer, in.Hostname)
		}
	}
	return out
}

// ---- ingresses ----

// WatchIngresses starts the Ingress informer if needed and calls f after
// every change (and once after the first sync).
func (c *Cluster) WatchIngresses(f func()) (cancel func()) {
	cancel = c.ingressListener.add(func(struct{}) { f() })
	c.ingressOnce.Do(c.startIngresses)
	return cancel
}

// IngressesSynced is closed once the Ingress cache holds a full listing.
func (c *Cluster) IngressesSynced() <-chan struct{} { return c.ingSynced }

func (c *Cluster) startIngresses() {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.netv1.Ingresses(metav1.NamespaceAll).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.netv1.Ingresses(metav1.NamespaceAll).Watch(ctx, o)
		},
	}
	c.ingInformer = cache.NewSharedIndexInformer(lw, &networkingv1.Ingress{}, 0, cache.Indexers{})
	_ = c.ingInformer.SetTransform(stripMeta)
	_ = c.ingInformer.SetWatchErrorHandlerWithContext(c.watchError)
	_, _ = c.ingInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if i, ok := obj.(*networkingv1.Ingress); ok {
				c.ingMu.Lock()
				if _, seen := c.ingSeq[string(i.UID)]; !seen {
					c.ingNext++
					c.ingSeq[string(i.UID)] = c.ingNext
				}
				c.ingMu.Unlock()
			}
			c.ingressListener.call(struct{}{})
		},
		UpdateFunc: func(_, _ any) { c.ingressListener.call(struct{}{}) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if i, ok := obj.(*networkingv1.Ingress); ok {
				c.ingMu.Lock()
				delete(c.ingSeq, string(i.UID))
				c.ingMu.Unlock()
			}
			c.ingressListener.call(struct{}{})
		},
	})
	go c.ingInformer.Run(c.stop)
	go func() {
		if cache.WaitForCacheSync(c.stop, c.ingInformer.HasSynced) {
			close(c.ingSynced)
			c.ingressListener.call(struct{}{})
		}
	}()
}

// Ingresses returns every Ingress in namespace ns ("" for all), in the
// order this process first saw them.
func (c *Cluster) Ingresses(ns string) []Ingress {
	c.ingressOnce.Do(c.startIngresses)
	var out []Ingress
	c.ingMu.Lock()
	defer c.ingMu.Unlock()
	for _, o := range c.ingInformer.GetStore().List() {
		i := o.(*networkingv1.Ingress)
		if ns != "" && i.Namespace != ns {
			continue
		}
		ci := convIngress(i)
		ci.Seq = c.ingSeq[string(i.UID)]
		out = append(out, ci)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Seq != out[b].Seq {
			return out[a].Seq < out[b].Seq
		}
		return out[a].Namespace+"/"+out[a].Name < out[b].Namespace+"/"+out[b].Name
	})
	return out
}

// IngressClassAnnotation is the annotation naming an Ingress's controller.
const IngressClassAnnotation = "kubernetes.io/ingress.class"

func convIngress(i *networkingv1.Ingress) Ingress {
	out := Ingress{Namespace: i.Namespace, Name: i.Name}
	out.ClassAnnotation, out.HasClassAnnotation = i.Annotations[IngressClassAnnotation]
	if i.Spec.IngressClassName != nil {
		out.ClassName = *i.Spec.IngressClassName
	}
	if b := convBackend(i.Spec.DefaultBackend); b != nil {
		out.DefaultBackend = b
	}
	for _, r := range i.Spec.Rules {
		rule := IngressRule{Host: r.Host}
		if r.HTTP == nil {
			rule.NoHTTP = true
		} else {
			for _, p := range r.HTTP.Paths {
				b := convBackend(&p.Backend)
				if b == nil {
					continue // resource backends route nowhere we know
				}
				ip := IngressPath{Path: p.Path, Backend: *b}
				if p.PathType != nil {
					ip.PathType = string(*p.PathType)
				}
				rule.Paths = append(rule.Paths, ip)
			}
		}
		out.Rules = append(out.Rules, rule)
	}
	return out
}

func convBackend(b *networkingv1.IngressBackend) *IngressBackend {
	if b == nil || b.Service == nil {
		return nil
	}
	port := b.Service.Port.Name
	if port == "" {
		port = strconv.Itoa(int(b.Service.Port.Number))
	}
	return &IngressBackend{Service: b.Service.Name, Port: port}
}

// SetIngressStatus writes addrs (IPs, or hostnames) as the load-balancer
// status of Ingress ns/name, unless it already says exactly that.
func (c *Cluster) SetIngressStatus(ctx context.Context, ns, name string, addrs []string) error {
	ing, err := c.netv1.Ingresses(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("k8s: get ingress %s/%s: %w", ns, name, err)
	}
	want := make([]networkingv1.IngressLoadBalancerIngress, 0, len(addrs))
	for _, a := range addrs {
		if isIP(a) {
			want = append(want, networkingv1.IngressLoadBalancerIngress{IP: a})
		} else {
			want = append(want, networkingv1.IngressLoadBalancerIngress{Hostname: a})
		}
	}
	if equalLB(ing.Status.LoadBalancer.Ingress, want) {
		return nil
	}
	ing.Status.LoadBalancer.Ingress = want
	if _, err := c.netv1.Ingresses(ns).UpdateStatus(ctx, ing, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("k8s: update status of ingress %s/%s: %w", ns, name, err)
	}
	return nil
}

func equalLB(a, b []networkingv1.IngressLoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].IP != b[i].IP || a[i].Hostname != b[i].Hostname {
			return false
		}
	}
	return true
}

// HTTPStatus returns the HTTP status of a Kubernetes API error, or 0.
func HTTPStatus(err error) int {
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		return int(s.Status().Code)
	}
	return 0
}

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
