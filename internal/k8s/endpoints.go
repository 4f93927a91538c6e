package k8s

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

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
// It waits until the API server has said which it serves.
func (c *Cluster) UsesEndpointSlices() bool {
	c.endpointsOnce.Do(c.startEndpoints)
	select {
	case <-c.epDecided:
		return c.slices
	case <-c.stop:
		return false
	}
}

const serviceIndex = "service"

// startEndpoints starts the endpoint and service informers in the
// background: which endpoint API to read may need a request to the server,
// and no lookup may wait for that.
func (c *Cluster) startEndpoints() { go c.runEndpoints() }

func (c *Cluster) runEndpoints() {
	switch c.opts.Endpoints {
	case EndpointSlices:
		c.slices = true
	case EndpointsLegacy:
		c.slices = false
	default:
		var ok bool
		if c.slices, ok = c.servesEndpointSlices(); !ok {
			return // stopped
		}
	}
	close(c.epDecided)
	if c.slices {
		lw := &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				l := &discoveryv1.EndpointSliceList{}
				return l, c.api.endpointSlices().list(ctx, metav1.NamespaceAll, o, l)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.api.endpointSlices().watch(ctx, metav1.NamespaceAll, o)
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
				l := &corev1.EndpointsList{}
				return l, c.api.endpoints().list(ctx, metav1.NamespaceAll, o, l)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.api.endpoints().watch(ctx, metav1.NamespaceAll, o)
			},
		}
		//lint:ignore SA1019 v1 Endpoints is the fallback for clusters without EndpointSlices
		c.epInformer = cache.NewSharedIndexInformer(lw, &corev1.Endpoints{}, 0, cache.Indexers{})
	}
	svcLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			l := &corev1.ServiceList{}
			return l, c.api.services().list(ctx, metav1.NamespaceAll, o, l)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.api.services().watch(ctx, metav1.NamespaceAll, o)
		},
	}
	c.svcInformer = cache.NewSharedIndexInformer(svcLW, &corev1.Service{}, 0, cache.Indexers{})
	for _, inf := range []cache.SharedIndexInformer{c.epInformer, c.svcInformer} {
		_ = inf.SetTransform(stripMeta)
		_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
			c.watchError(ctx, r, err)
			c.recordError(&c.epErr, c.epSynced, err, func() { c.serviceListener.call(ServiceKey{}) })
		})
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
	go c.probe(c.epSynced, &c.epErr, func() { c.serviceListener.call(ServiceKey{}) }, func(ctx context.Context) error {
		return c.api.services().list(ctx, metav1.NamespaceAll, metav1.ListOptions{Limit: 1}, &corev1.ServiceList{})
	})
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
// It retries (recording the failure for lookups to report) until the server
// answers; ok is false if the cluster stopped first.
func (c *Cluster) servesEndpointSlices() (slices, ok bool) {
	backoff := 200 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := c.api.core.Get().AbsPath("/apis/discovery.k8s.io/v1").Do(ctx).Error()
		cancel()
		switch {
		case err == nil:
			return true, true
		case apierrors.IsNotFound(err):
			c.logger.Info("k8s: discovery.k8s.io/v1 not served; reading v1 Endpoints")
			return false, true
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			// Discovery may be closed to this account; slices are the norm.
			return true, true
		}
		c.recordError(&c.epErr, c.epSynced, err, func() { c.serviceListener.call(ServiceKey{}) })
		select {
		case <-c.stop:
			return false, false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// recordError remembers the latest list/watch failure before the first
// sync and, on the first one, tells the listeners, so that lookups waiting
// for the cache fail with the reason instead of waiting forever.
func (c *Cluster) recordError(slot *atomic.Pointer[error], synced <-chan struct{}, err error, notify func()) {
	select {
	case <-synced:
		return // the cache serves its last state while the watch recovers
	default:
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	err = fmt.Errorf("k8s: cannot list from the API at %s: %w", c.conn, err)
	if was := slot.Swap(&err); was == nil {
		notify()
	}
}

// probe checks, until the cache has synced, that a list request on the
// resource works, and records the failure otherwise: client-go's informers
// retry refused connections silently, and lookups must not wait forever
// without a reason.
func (c *Cluster) probe(synced <-chan struct{}, slot *atomic.Pointer[error], notify func(), list func(context.Context) error) {
	backoff := 200 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		go func() {
			select {
			case <-c.stop:
			case <-synced:
			case <-ctx.Done():
			}
			cancel()
		}()
		err := list(ctx)
		cancel()
		select {
		case <-synced:
			return
		case <-c.stop:
			return
		default:
		}
		if err == nil {
			slot.Store(nil) // reachable: the informer will sync
		} else {
			c.recordError(slot, synced, err, notify)
		}
		select {
		case <-synced:
			return
		case <-c.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// EndpointsError returns why the endpoint or service caches have not
// synced yet, if a list or watch has failed; nil once synced.
func (c *Cluster) EndpointsError() error { return loadErr(&c.epErr, c.epSynced) }

// IngressesError is EndpointsError for the Ingress cache.
func (c *Cluster) IngressesError() error { return loadErr(&c.ingErr, c.ingSynced) }

func loadErr(slot *atomic.Pointer[error], synced <-chan struct{}) error {
	select {
	case <-synced:
		return nil
	default:
	}
	if p := slot.Load(); p != nil {
		return *p
	}
	return nil
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
	//lint:ignore SA1019 v1 Endpoints is the fallback for clusters without EndpointSlices
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
// Before the caches have synced it reports nothing (callers check
// EndpointsSynced first).
func (c *Cluster) Endpoints(ns, name string) (Endpoints, bool) {
	c.endpointsOnce.Do(c.startEndpoints)
	ep := Endpoints{Namespace: ns, Service: name}
	select {
	case <-c.epSynced:
	default:
		return ep, false
	}
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
	//lint:ignore SA1019 v1 Endpoints is the fallback for clusters without EndpointSlices
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

//lint:ignore SA1019 v1 Endpoints is the fallback for clusters without EndpointSlices
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
	select {
	case <-c.epSynced:
	default:
		return Service{}, false
	}
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
