package k8s

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

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
			l := &networkingv1.IngressList{}
			return l, c.api.ingresses().list(ctx, metav1.NamespaceAll, o, l)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.api.ingresses().watch(ctx, metav1.NamespaceAll, o)
		},
	}
	c.ingInformer = cache.NewSharedIndexInformer(lw, &networkingv1.Ingress{}, 0, cache.Indexers{})
	_ = c.ingInformer.SetTransform(stripMeta)
	_ = c.ingInformer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		c.watchError(ctx, r, err)
		c.recordError(&c.ingErr, c.ingSynced, err, func() { c.ingressListener.call(struct{}{}) })
	})
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
	go c.probe(c.ingSynced, &c.ingErr, func() { c.ingressListener.call(struct{}{}) }, func(ctx context.Context) error {
		return c.api.ingresses().list(ctx, metav1.NamespaceAll, metav1.ListOptions{Limit: 1}, &networkingv1.IngressList{})
	})
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
	ing := &networkingv1.Ingress{}
	if err := c.api.ingresses().get(ctx, ns, name, ing); err != nil {
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
	if err := c.api.ingresses().updateStatus(ctx, ns, name, ing, &networkingv1.Ingress{}); err != nil {
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
