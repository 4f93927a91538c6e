package k8s

// The plain views of Kubernetes objects that leave this package. They keep
// only what the plug-ins read.

// EndpointAddress is one backend of a Service.
type EndpointAddress struct {
	IP       string
	NodeName string
	Hostname string
	Zone     string
}

// EndpointPort is a named port of an endpoint group.
type EndpointPort struct {
	Name     string
	Port     int32
	Protocol string // "TCP", "UDP", "SCTP"
}

// EndpointGroup is a set of addresses sharing a set of ports: one subset of
// a v1 Endpoints object, or one discovery/v1 EndpointSlice.
type EndpointGroup struct {
	Ports    []EndpointPort
	Ready    []EndpointAddress
	NotReady []EndpointAddress
}

// Endpoints is everything known about the backends of one Service.
type Endpoints struct {
	Namespace, Service string
	// Labels of the Endpoints object (or the union of the slices' labels).
	// Kubernetes copies the Service's labels onto them.
	Labels map[string]string
	Groups []EndpointGroup
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name     string
	Port     int32
	Protocol string
	// TargetPortName is set when targetPort is a name; otherwise
	// TargetPortNumber holds the number (defaulting to Port).
	TargetPortName   string
	TargetPortNumber int32
}

// Service is the part of a Service object the namers read.
type Service struct {
	Namespace, Name string
	Labels          map[string]string
	Type            string
	Ports           []ServicePort
	// LoadBalancer lists status.loadBalancer.ingress entries: the IP, or the
	// hostname when there is no IP.
	LoadBalancer []string
}

// IngressBackend is the Service an ingress rule sends to. Port is the port
// name or the number in decimal.
type IngressBackend struct {
	Service string
	Port    string
}

// IngressPath is one HTTP path of an ingress rule.
type IngressPath struct {
	Path     string
	PathType string // "Exact", "Prefix", "ImplementationSpecific" (or "")
	Backend  IngressBackend
}

// IngressRule is one host rule of an Ingress; an empty Host matches any.
type IngressRule struct {
	Host  string
	Paths []IngressPath
	// NoHTTP is set for a rule without an http block (it routes nothing).
	NoHTTP bool
}

// Ingress is a networking.k8s.io/v1 Ingress.
type Ingress struct {
	Namespace, Name string
	// ClassAnnotation is the kubernetes.io/ingress.class annotation;
	// HasClassAnnotation says whether it is present.
	ClassAnnotation    string
	HasClassAnnotation bool
	// ClassName is spec.ingressClassName ("" when unset).
	ClassName      string
	Rules          []IngressRule
	DefaultBackend *IngressBackend
	// Seq orders ingresses by the time this process first saw them (the
	// "watch order" Linkerd tries rules in).
	Seq uint64
}
