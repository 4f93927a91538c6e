package k8s

import (
	"fmt"
	"net"
	"strconv"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Conn says how to reach the API server. The zero value plus Host/Port is
// Linkerd 1's only mode: plain HTTP to a `kubectl proxy` sidecar
// (localhost:8001 by default), which does the authentication.
type Conn struct {
	// Host and Port of a plain-HTTP API endpoint (kubectl proxy).
	Host string
	Port int
	// InCluster uses the pod's service account (token and CA mounted under
	// /var/run/secrets/kubernetes.io/serviceaccount, API address from
	// KUBERNETES_SERVICE_HOST/PORT) instead of Host/Port.
	InCluster bool
	// Kubeconfig is the path of a kubeconfig file whose current context is
	// used instead of Host/Port.
	Kubeconfig string
	// Token, when set with Host/Port, is sent as a bearer token. Not a
	// config key: tests use it (with Scheme https and TLSInsecure) to reach
	// their API server directly.
	Token string
	// Scheme is "http" (default) or "https" for Host/Port.
	Scheme string
	// TLSInsecure skips verification of the server certificate (https).
	TLSInsecure bool
}

// Key identifies the connection for sharing informers.
func (c Conn) Key() string {
	switch {
	case c.InCluster:
		return "incluster"
	case c.Kubeconfig != "":
		return "kubeconfig:" + c.Kubeconfig
	}
	return fmt.Sprintf("%s://%s|%t|%s", c.scheme(), net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), c.TLSInsecure, c.Token)
}

func (c Conn) scheme() string {
	if c.Scheme == "" {
		return "http"
	}
	return c.Scheme
}

// String describes the connection for logs and errors.
func (c Conn) String() string {
	switch {
	case c.InCluster:
		return "in-cluster service account"
	case c.Kubeconfig != "":
		return "kubeconfig " + c.Kubeconfig
	}
	return c.scheme() + "://" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// RESTConfig builds the client-go configuration for c.
func (c Conn) RESTConfig() (*rest.Config, error) {
	var cfg *rest.Config
	switch {
	case c.InCluster && c.Kubeconfig != "":
		return nil, fmt.Errorf("k8s: inCluster and kubeconfig are mutually exclusive")
	case c.InCluster:
		ic, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("k8s: in-cluster config: %w", err)
		}
		cfg = ic
	case c.Kubeconfig != "":
		kc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("k8s: kubeconfig %s: %w", c.Kubeconfig, err)
		}
		cfg = kc
	default:
		if c.Host == "" {
			return nil, fmt.Errorf("k8s: host is empty")
		}
		if c.Port <= 0 || c.Port > 65535 {
			return nil, fmt.Errorf("k8s: port %d out of range 1-65535", c.Port)
		}
		s := c.scheme()
		if s != "http" && s != "https" {
			return nil, fmt.Errorf("k8s: scheme %q is not http or https", s)
		}
		cfg = &rest.Config{
			Host:        s + "://" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
			BearerToken: c.Token,
		}
		cfg.TLSClientConfig.Insecure = c.TLSInsecure
	}
	cfg.UserAgent = "linnet"
	// The v1 Endpoints deprecation warning is expected where slices are
	// absent; API warnings are not actionable at run time.
	cfg.WarningHandler = rest.NoWarnings{}
	// No cfg.Timeout: it would also cut the informers' long-lived watches.
	// Callers bound ordinary requests with their contexts.
	// Informers of many names must not be throttled into staleness.
	cfg.QPS = 50
	cfg.Burst = 100
	return cfg, nil
}
