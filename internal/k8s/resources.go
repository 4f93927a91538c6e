package k8s

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Linnet reads three API groups. client-go's generated clientsets would
// do the same requests, but they import k8s.io/client-go/kubernetes/scheme,
// which links and registers every built-in API group: 14 MB more binary,
// and about 9 MB more resident memory in every process, router included,
// whether or not it talks to Kubernetes (see docs/performance.md). So the
// requests are made here with client-go's REST client over a scheme that
// knows only these groups. TestBinaryLinksNoClientset keeps it so.

// apiScheme is built on first use, so that a process that never talks to
// Kubernetes does not pay for it.
var apiScheme = sync.OnceValues(func() (*runtime.Scheme, runtime.ParameterCodec) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, discoveryv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(fmt.Sprintf("k8s: building the API scheme: %v", err)) // programming error
		}
	}
	// Status and the other unversioned meta types, as client-go registers them.
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return s, runtime.NewParameterCodec(s)
})

// resources is a client of one namespaced resource of one API group.
type resources struct {
	client   rest.Interface
	resource string // plural, lower case: "endpointslices"
	params   runtime.ParameterCodec
}

// apiGroups holds a REST client for each group version Linnet reads.
type apiGroups struct {
	core, discovery, networking rest.Interface
	params                      runtime.ParameterCodec
}

func newAPIGroups(cfg *rest.Config) (*apiGroups, error) {
	scheme, params := apiScheme()
	codecs := serializer.NewCodecFactory(scheme).WithoutConversion()
	client := func(gv schema.GroupVersion, apiPath string) (rest.Interface, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion = &gv
		c.APIPath = apiPath
		c.NegotiatedSerializer = codecs
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		return rest.RESTClientFor(c)
	}
	var g apiGroups
	var err error
	if g.core, err = client(corev1.SchemeGroupVersion, "/api"); err != nil {
		return nil, err
	}
	if g.discovery, err = client(discoveryv1.SchemeGroupVersion, "/apis"); err != nil {
		return nil, err
	}
	if g.networking, err = client(networkingv1.SchemeGroupVersion, "/apis"); err != nil {
		return nil, err
	}
	g.params = params
	return &g, nil
}

func (g *apiGroups) endpointSlices() resources {
	return resources{g.discovery, "endpointslices", g.params}
}
func (g *apiGroups) endpoints() resources { return resources{g.core, "endpoints", g.params} }
func (g *apiGroups) services() resources  { return resources{g.core, "services", g.params} }
func (g *apiGroups) ingresses() resources { return resources{g.networking, "ingresses", g.params} }

// timeout is the request timeout a list or watch asks the server for.
func timeout(o metav1.ListOptions) time.Duration {
	if o.TimeoutSeconds != nil {
		return time.Duration(*o.TimeoutSeconds) * time.Second
	}
	return 0
}

// list fills into (a *XList) with the objects of namespace ns ("" for all).
func (r resources) list(ctx context.Context, ns string, o metav1.ListOptions, into runtime.Object) error {
	return r.client.Get().Namespace(ns).Resource(r.resource).
		VersionedParams(&o, r.params).Timeout(timeout(o)).
		Do(ctx).Into(into)
}

// watch starts a watch of namespace ns ("" for all).
func (r resources) watch(ctx context.Context, ns string, o metav1.ListOptions) (watch.Interface, error) {
	o.Watch = true
	return r.client.Get().Namespace(ns).Resource(r.resource).
		VersionedParams(&o, r.params).Timeout(timeout(o)).
		Watch(ctx)
}

// get fills into with object ns/name.
func (r resources) get(ctx context.Context, ns, name string, into runtime.Object) error {
	return r.client.Get().Namespace(ns).Resource(r.resource).Name(name).
		VersionedParams(&metav1.GetOptions{}, r.params).
		Do(ctx).Into(into)
}

// updateStatus writes obj's status subresource and fills into with the
// server's answer.
func (r resources) updateStatus(ctx context.Context, ns, name string, obj, into runtime.Object) error {
	return r.client.Put().Namespace(ns).Resource(r.resource).Name(name).SubResource("status").
		VersionedParams(&metav1.UpdateOptions{}, r.params).
		Body(obj).Do(ctx).Into(into)
}
