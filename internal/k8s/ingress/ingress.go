package ingress

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	kapi "github.com/linnet-mesh/linnet/internal/k8s"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/proxy/h2"
)

// Kind is the identifier's config kind.
const Kind = "io.l5d.ingress"

// The kind is registered on http and on h2 routers, as in Linkerd 1.x:
// one config block, one matcher. On h2 the request's :authority is its
// r.Host and :path its r.URL.Path, so Identify needs no protocol case.
func init() {
	config.Register[proxy.IdentifierConfig](Kind, func() proxy.IdentifierConfig { return &Config{} })
	config.Register[h2.IdentifierConfig](Kind, func() h2.IdentifierConfig { return &Config{} })
}

// Config is the io.l5d.ingress identifier block:
//
//	identifier:
//	  kind: io.l5d.ingress
//	  namespace: default            # all namespaces when unset
//	  ingressClassAnnotation: linkerd
//	  ignoreDefaultBackends: false
//	  host: localhost               # kubectl proxy
//	  port: 8001
type Config struct {
	Namespace              string `yaml:"namespace"`
	IngressClassAnnotation string `yaml:"ingressClassAnnotation"`
	IgnoreDefaultBackends  bool   `yaml:"ignoreDefaultBackends"`
	Host                   string `yaml:"host"`
	Port                   int    `yaml:"port"`
	// InCluster and Kubeconfig are Linnet additions (see namer io.l5d.k8s).
	InCluster  bool   `yaml:"inCluster"`
	Kubeconfig string `yaml:"kubeconfig"`
	// StatusAddress, when set, is written (IP or hostname) into the
	// status.loadBalancer of every Ingress this identifier serves, so
	// `kubectl get ingress` shows where to send traffic. A Linnet addition.
	StatusAddress string `yaml:"statusAddress"`
	// SyncTimeout bounds how long a request waits for the first listing of
	// ingresses after start (default 10s). A Linnet addition.
	SyncTimeoutMs int `yaml:"syncTimeoutMs"`
}

// SetDefaults implements the config decoder's defaults hook.
func (c *Config) SetDefaults() {
	c.IngressClassAnnotation, c.Host, c.Port, c.SyncTimeoutMs = "linkerd", "localhost", 8001, 10000
}

// Validate checks the block.
func (c *Config) Validate() error {
	switch {
	case c.Host == "":
		return config.FieldError("host", "must not be empty")
	case c.Port < 1 || c.Port > 65535:
		return config.FieldError("port", "%d is not a port (1-65535)", c.Port)
	case c.InCluster && c.Kubeconfig != "":
		return config.FieldError("kubeconfig", "inCluster and kubeconfig are mutually exclusive")
	case c.IngressClassAnnotation == "":
		return config.FieldError("ingressClassAnnotation", "must not be empty")
	case c.SyncTimeoutMs < 0:
		return config.FieldError("syncTimeoutMs", "must not be negative")
	}
	return nil
}

// Identifier names requests after Kubernetes Ingress rules.
type Identifier struct {
	cfg     Config
	prefix  dtab.Path
	cluster *kapi.Cluster
	logger  *slog.Logger
	snap    atomic.Pointer[snapshot]

	rebuildMu sync.Mutex

	statusReq chan struct{}
}

// NewIdentifier implements proxy.IdentifierConfig.
func (c *Config) NewIdentifier(env proxy.IdentifierEnv) (proxy.Identifier, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	ctx := env.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.Default()
	}
	conn := kapi.Conn{Host: c.Host, Port: c.Port, InCluster: c.InCluster, Kubeconfig: c.Kubeconfig}
	cl, err := kapi.Acquire(ctx, conn, kapi.Options{}, logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Kind, err)
	}
	id := &Identifier{cfg: *c, prefix: env.DstPrefix, cluster: cl, logger: logger.With("identifier", Kind),
		statusReq: make(chan struct{}, 1)}
	if len(id.prefix) == 0 {
		id.prefix = dtab.Path{"svc"}
	}
	id.snap.Store(&snapshot{})
	// The cluster may outlive this router (another holder shares it): stop
	// rebuilding when the router stops.
	context.AfterFunc(ctx, cl.WatchIngresses(id.rebuild))
	// The cluster may be shared and already listed: start from its cache.
	id.rebuild()
	if c.StatusAddress != "" {
		go id.statusLoop(ctx)
	}
	return id, nil
}

func (id *Identifier) rebuild() {
	// Serialised, so a slower rebuild never stores an older snapshot over
	// a newer one.
	id.rebuildMu.Lock()
	defer id.rebuildMu.Unlock()
	ings := id.cluster.Ingresses(id.cfg.Namespace)
	s := compile(ings, id.cfg.IngressClassAnnotation, id.cfg.IgnoreDefaultBackends, func(ing kapi.Ingress, path string, err error) {
		id.logger.Warn("ingress path is not a valid regular expression; rule ignored",
			"ingress", ing.Namespace+"/"+ing.Name, "path", path, "error", err)
	})
	id.snap.Store(s)
	if id.cfg.StatusAddress != "" {
		select {
		case id.statusReq <- struct{}{}:
		default:
		}
	}
}

// Identify implements proxy.Identifier.
func (id *Identifier) Identify(r *http.Request) (dtab.Path, error) {
	if err := id.awaitSync(r.Context()); err != nil {
		return nil, err
	}
	host := r.Host
	if host == "" {
		host = r.Header.Get("Host")
	}
	path := r.URL.Path
	ru, ok := id.snap.Load().match(host, path)
	if !ok {
		return nil, proxy.Unidentified("no ingress rule matches host %q path %q", requestHost(host), path)
	}
	return id.prefix.Concat(dtab.Path{ru.ns, ru.backend.Port, ru.backend.Service}), nil
}

func (id *Identifier) awaitSync(ctx context.Context) error {
	select {
	case <-id.cluster.IngressesSynced():
		return nil
	default:
	}
	if err := id.cluster.IngressesError(); err != nil {
		// Fail fast while the API is unreachable.
		return proxy.Unidentified("ingresses not listed: %v", err)
	}
	t := time.NewTimer(time.Duration(id.cfg.SyncTimeoutMs) * time.Millisecond)
	defer t.Stop()
	// A failure to reach the API is noticed within a tick, not at the
	// deadline.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-id.cluster.IngressesSynced():
			return nil
		case <-tick.C:
			if err := id.cluster.IngressesError(); err != nil {
				return proxy.Unidentified("ingresses not listed: %v", err)
			}
		case <-t.C:
			return proxy.Unidentified("ingresses not yet listed from the Kubernetes API (%s)", id.cluster.Conn())
		case <-ctx.Done():
			return proxy.Unidentified("request ended while waiting for the ingress listing")
		}
	}
}

// statusLoop writes the status address into served ingresses after each
// change, retrying failures on the next change or after a back-off.
func (id *Identifier) statusLoop(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-id.statusReq:
		case <-retry.C:
		}
		if failed := id.writeStatus(ctx); failed {
			retry.Reset(5 * time.Second)
		}
	}
}

func (id *Identifier) writeStatus(ctx context.Context) (failed bool) {
	addrs := strings.Split(id.cfg.StatusAddress, ",")
	for i := range addrs {
		addrs[i] = strings.TrimSpace(addrs[i])
	}
	for _, ing := range id.cluster.Ingresses(id.cfg.Namespace) {
		if !ours(ing, id.cfg.IngressClassAnnotation) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := id.cluster.SetIngressStatus(cctx, ing.Namespace, ing.Name, addrs)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			id.logger.Warn("cannot update ingress status", "ingress", ing.Namespace+"/"+ing.Name, "error", err)
			failed = true
		}
	}
	return failed
}

var (
	_ proxy.IdentifierConfig = (*Config)(nil)
	_ h2.IdentifierConfig    = (*Config)(nil)
	_ proxy.Identifier       = (*Identifier)(nil)
)
