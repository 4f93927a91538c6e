// Package consul is the io.l5d.consul.interpreter interpreter: the
// default interpreter with a dtab kept in Consul's KV store, under the
// key <pathPrefix>/<namespace> that namerd's io.l5d.consul storage uses,
// followed with blocking queries (Linkerd 1.x's ConsulDtabInterpreterConfig):
//
//	interpreter:
//	  kind: io.l5d.consul.interpreter
//	  host: localhost            # default
//	  port: 8500                 # default
//	  pathPrefix: /namerd/dtabs  # default
//	  namespace: default         # required
//	  token: ...
//	  datacenter: dc1
//	  readConsistencyMode: stale
//	  failFast: false
//	  backoff: {kind: jittered, minMs: 100, maxMs: 10000}
//	  tls: {commonName: consul}
//
// The stored dtab comes before the router's `dtab:` (later dentries win).
// As in Linkerd, a missing key is the empty dtab. Until Consul first
// answers, bindings wait (with failFast, they fail instead); a stored
// value that does not parse is logged and the last good dtab stays in
// force, as it does while Consul cannot be reached.
package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/naming/dtabsource"
	"github.com/linnet-mesh/linnet/internal/storage"
	storeconsul "github.com/linnet-mesh/linnet/internal/storage/consul"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Kind is the interpreter kind.
const Kind = "io.l5d.consul.interpreter"

func init() {
	config.Register[naming.InterpreterConfig](Kind, func() naming.InterpreterConfig { return new(Config) })
}

// Config is the io.l5d.consul.interpreter block: the keys of namerd's
// io.l5d.consul storage (host, port, pathPrefix, token, datacenter,
// read/writeConsistencyMode, failFast, backoff, tls), plus the namespace
// whose dtab the router uses and the interpreter's transformers.
type Config struct {
	storeconsul.Config `yaml:",inline"`
	// Namespace is the dtab's namespace (the last key segment).
	Namespace string `yaml:"namespace" config:"required"`
	// Transformers rewrite every bound tree, in order (config.md §4.7).
	Transformers []config.Kinded[naming.TransformerConfig] `yaml:"transformers"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if err := storeconsul.CheckNamespace(c.Namespace); err != nil {
		return config.FieldError("namespace", "%v", err)
	}
	return nil
}

// NewInterpreter implements naming.InterpreterConfig.
func (c *Config) NewInterpreter(env naming.InterpreterEnv) (naming.Interpreter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st, err := c.Config.NewStore(storage.Env{Ctx: env.Ctx, Logger: logger})
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("Consul key %s/%s at %s:%d", c.PathPrefix, c.Namespace, c.Host, c.Port)
	live := Follow(env.Ctx, st, c.Namespace, what, logger)
	return dtabsource.NewFromEnv(env, c.Transformers, live, Kind, c.Namespace)
}

// Follow publishes namespace ns of st into a Live until ctx is done; then
// it closes st.
//
// The store reports a key whose value does not parse as absent for an
// instant before it reports the error, so an absence is confirmed with a
// read before it empties the dtab; any later observation supersedes it.
func Follow(ctx context.Context, st storage.Store, ns, what string, logger *slog.Logger) *dtabsource.Live {
	if ctx == nil {
		ctx = context.Background()
	}
	live := dtabsource.NewLive(what, logger)
	var mu sync.Mutex // orders observations and confirmations
	var seq uint64
	confirmAbsent := func(my uint64) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := st.Get(rctx, ns)
		mu.Lock()
		defer mu.Unlock()
		if my != seq {
			return // superseded
		}
		switch {
		case errors.Is(err, storage.ErrNotFound):
			live.Set(dtab.Dtab{}) // no such key: the empty dtab, as in Linkerd
		case err != nil && ctx.Err() == nil:
			live.Fail(fmt.Errorf("%s: %w", what, err))
		}
	}
	cancel := st.Observe(ns).Subscribe(func(a watch.Activity[storage.Observation]) {
		mu.Lock()
		defer mu.Unlock()
		seq++
		switch {
		case a.State == watch.Pending:
		case a.State == watch.Failed:
			live.Fail(fmt.Errorf("%s: %w", what, a.Err))
		case a.Value == nil:
			go confirmAbsent(seq)
		default:
			live.Set(a.Value.Dtab)
		}
	})
	go func() {
		<-ctx.Done()
		cancel()
		if c, ok := st.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}()
	return live
}
