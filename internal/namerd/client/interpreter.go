package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/api"
	"github.com/linnet-mesh/linnet/internal/namerd/remote"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// InterpreterKind is the config kind of the namerd HTTP interpreter.
const InterpreterKind = "io.l5d.namerd.http"

func init() {
	config.Register[naming.InterpreterConfig](InterpreterKind, func() naming.InterpreterConfig { return new(InterpreterConfig) })
}

// InterpreterConfig is a router's `interpreter: {kind: io.l5d.namerd.http}`
// block (Linkerd's keys):
//
//	interpreter:
//	  kind: io.l5d.namerd.http
//	  experimental: true
//	  dst: /$/inet/namerd.default.svc.cluster.local/4180
//	  namespace: default
//	  retry: {baseSeconds: 5, maxSeconds: 600}
type InterpreterConfig struct {
	Experimental bool `yaml:"experimental"`
	// Dst names namerd's HTTP API; it is bound with the router's namers
	// (e.g. /$/inet/<host>/<port>, /#/io.l5d.k8s/...).
	Dst string `yaml:"dst" config:"required"`
	// Namespace is the namerd dtab namespace (default "default").
	Namespace string      `yaml:"namespace"`
	Retry     RetryConfig `yaml:"retry"`
	// TLS secures the connections to namerd.
	TLS *ClientTLS `yaml:"tls"`
	// Transformers rewrite every bound tree namerd sends, in order
	// (config.md §4.7), as with every Linkerd interpreter.
	Transformers []config.Kinded[naming.TransformerConfig] `yaml:"transformers"`

	dst dtab.Path
}

// ClientTLS is the interpreter's `tls` block (Linkerd's client TLS keys).
type ClientTLS = tlsconf.ClientConfig

// RetryConfig is the reconnect backoff: jittered, doubling from
// BaseSeconds up to MaxSeconds. Fractions are allowed.
type RetryConfig struct {
	BaseSeconds float64 `yaml:"baseSeconds"`
	MaxSeconds  float64 `yaml:"maxSeconds"`
}

// SetDefaults implements config.Defaulter.
func (c *InterpreterConfig) SetDefaults() {
	c.Namespace = "default"
	c.Retry = RetryConfig{BaseSeconds: 5, MaxSeconds: 600}
}

// Validate implements config.Validator.
func (c *InterpreterConfig) Validate() error {
	p, err := remote.ParseDst(c.Dst, "/$/inet/127.0.0.1/4180")
	if err != nil {
		return err
	}
	c.dst = p
	if c.Namespace == "" {
		return config.FieldError("namespace", "must not be empty")
	}
	if c.Retry.BaseSeconds <= 0 || c.Retry.MaxSeconds < c.Retry.BaseSeconds {
		return config.FieldError("retry", "need 0 < baseSeconds <= maxSeconds, got %v and %v", c.Retry.BaseSeconds, c.Retry.MaxSeconds)
	}
	return nil
}

// NewInterpreter implements naming.InterpreterConfig.
func (c *InterpreterConfig) NewInterpreter(env naming.InterpreterEnv) (naming.Interpreter, error) {
	if c.dst == nil {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	ctx, log := remote.Env(env)
	trans, err := naming.NewTransformers(env.Env, c.Transformers)
	if err != nil {
		return nil, err
	}
	tc, err := c.TLS.WatchedTLSConfig(ctx, log, "namerd")
	if err != nil {
		return nil, fmt.Errorf("interpreter.tls: %w", err)
	}
	return NewInterpreter(ctx, InterpreterOptions{
		Namespace:    c.Namespace,
		Dst:          c.Dst,
		Dial:         remote.DialDst(ctx, env.Namers, c.dst),
		TLS:          tc,
		RetryBase:    seconds(c.Retry.BaseSeconds),
		RetryMax:     seconds(c.Retry.MaxSeconds),
		Transformers: trans,
		Logger:       log.With("interpreter", InterpreterKind, "namespace", c.Namespace),
	}), nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// InterpreterOptions configure NewInterpreter.
type InterpreterOptions struct {
	// Namespace is the namerd dtab namespace.
	Namespace string
	// Dial connects to namerd's HTTP API (one of its replicas).
	Dial func(ctx context.Context) (net.Conn, error)
	// Dst says where Dial goes (the config's dst), for people to read.
	Dst string
	// TLS, when set, secures the connections (HTTPS).
	TLS *tls.Config
	// RetryBase and RetryMax bound the jittered reconnect backoff.
	RetryBase, RetryMax time.Duration
	// Transformers rewrite every bound tree namerd sends, in order.
	Transformers []naming.Transformer
	Logger       *slog.Logger
}

// Interpreter binds names by asking namerd (io.l5d.namerd.http): for each
// (dtab, path) being watched it keeps one bind stream open, and for each
// bound id one addr stream, as Linkerd does (spec/namerd-api.md §8).
// Streams start with the first subscriber and stop with the last. When
// namerd is unreachable the last known state is kept, and the stream is
// reopened with jittered exponential backoff; a stream that ends is
// reopened at once.
type Interpreter struct {
	o    InterpreterOptions
	cli  *Client
	log  *slog.Logger
	bind *remote.Watches[watch.Activity[naming.BoundTree]] // by dtab text + "\x00" + path
	addr *remote.Watches[naming.Addr]                      // by bound id
}

// NewInterpreter returns an interpreter that asks namerd; its streams end
// when ctx does.
func NewInterpreter(ctx context.Context, o InterpreterOptions) *Interpreter {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 5 * time.Second
	}
	if o.RetryMax < o.RetryBase {
		o.RetryMax = o.RetryBase
	}
	tr := &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return o.Dial(ctx) },
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		// namerd sends stream headers at once; a namerd that accepts but
		// never answers is treated as down. (Quiet streams are fine: TCP
		// keep-alives of the dialer detect dead peers.)
		ResponseHeaderTimeout: 30 * time.Second,
		TLSClientConfig:       o.TLS,
	}
	// The host is a placeholder: Dial decides where connections go (and
	// the TLS config names the server).
	scheme := "http"
	if o.TLS != nil {
		scheme = "https"
	}
	cli, _ := New(scheme+"://namerd", &http.Client{Transport: tr})
	return &Interpreter{
		o: o, cli: cli, log: o.Logger,
		bind: remote.NewWatches(ctx, watch.PendingActivity[naming.BoundTree]()),
		addr: remote.NewWatches(ctx, naming.Addr{State: naming.AddrPending}),
	}
}

// Bind implements naming.Interpreter. Identical bindings watched at the
// same time share one bind stream, open while they have subscribers.
func (in *Interpreter) Bind(d dtab.Dtab, path dtab.Path) naming.Binding {
	text := d.String()
	return in.bind.Value(remote.BindKey(text, path.String()), func(ctx context.Context, v *watch.Var[watch.Activity[naming.BoundTree]]) {
		q := url.Values{"path": {path.String()}, "dtab": {text}}
		in.follow(ctx, api.BindPath+"/"+in.o.Namespace, q, in.applyBind(v))
	})
}

// applyBind returns the handler of one bind stream's documents.
func (in *Interpreter) applyBind(v *watch.Var[watch.Activity[naming.BoundTree]]) func([]byte) error {
	trees := remote.NewTrees(in.addrValue, in.o.Transformers)
	return func(doc []byte) error {
		var t api.Tree
		if err := json.Unmarshal(doc, &t); err != nil {
			return fmt.Errorf("bad bind document %.200q: %w", doc, err)
		}
		tree, err := trees.Convert(func(leaf remote.Leaf) (naming.BoundTree, error) {
			return boundTree(t, leaf)
		})
		if err != nil {
			return err
		}
		v.Set(watch.OkActivity(tree))
		return nil
	}
}

// boundTree converts a bind document; leaf gives the Bound of each of its
// leaves (see remote.Trees).
func boundTree(t api.Tree, leaf remote.Leaf) (naming.BoundTree, error) {
	switch t.Type {
	case api.TreeLeaf:
		id, err := dtab.ParsePath(t.Bound.ID)
		if err != nil {
			return naming.BoundTree{}, fmt.Errorf("bound id %q: %w", t.Bound.ID, err)
		}
		res, err := dtab.ParsePath(t.Bound.Path)
		if err != nil {
			return naming.BoundTree{}, fmt.Errorf("residual %q: %w", t.Bound.Path, err)
		}
		return dtab.LeafTree(leaf(id, res)), nil
	case api.TreeAlt:
		alts := make([]naming.BoundTree, len(t.Alt))
		for i, c := range t.Alt {
			var err error
			if alts[i], err = boundTree(c, leaf); err != nil {
				return naming.BoundTree{}, err
			}
		}
		return dtab.AltTree(alts...), nil
	case api.TreeUnion:
		ws := make([]dtab.Weighted[*naming.Bound], len(t.Union))
		for i, u := range t.Union {
			sub, err := boundTree(u.Tree, leaf)
			if err != nil {
				return naming.BoundTree{}, err
			}
			ws[i] = dtab.Weighted[*naming.Bound]{Weight: u.Weight, Tree: sub}
		}
		return dtab.UnionTree(ws...), nil
	case api.TreeFail, api.TreeException:
		return dtab.FailTree[*naming.Bound](), nil
	case api.TreeEmpty:
		return dtab.EmptyTree[*naming.Bound](), nil
	default:
		return dtab.NegTree[*naming.Bound](), nil
	}
}

// addrValue is a bound leaf's address set: an addr stream shared by every
// leaf with the same id, open while subscribed.
func (in *Interpreter) addrValue(id dtab.Path) watch.Value[naming.Addr] {
	return in.addr.Value(id.String(), func(ctx context.Context, v *watch.Var[naming.Addr]) {
		in.follow(ctx, api.AddrPath+"/"+in.o.Namespace, url.Values{"path": {id.String()}}, func(doc []byte) error {
			var a api.Addr
			if err := json.Unmarshal(doc, &a); err != nil {
				return fmt.Errorf("bad addr document %.200q: %w", doc, err)
			}
			v.Set(namingAddr(a))
			return nil
		})
	})
}

// namingAddr converts an address document; endpoint_addr_weight becomes
// the endpoint's weight.
func namingAddr(a api.Addr) naming.Addr {
	switch a.Type {
	case api.AddrBound:
		out := naming.Addr{State: naming.AddrBound, Meta: a.Meta, Addrs: make([]naming.Address, 0, len(a.Addrs))}
		for _, x := range a.Addrs {
			w := 1.0
			if v, ok := x.Meta[api.MetaWeight]; ok {
				switch n := v.(type) {
				case float64:
					w = n
				case string:
					if f, err := strconv.ParseFloat(n, 64); err == nil {
						w = f
					}
				}
			}
			out.Addrs = append(out.Addrs, naming.Address{Host: x.IP, Port: x.Port, Weight: w, Meta: x.Meta})
		}
		return out
	case api.AddrFailed:
		return naming.Addr{State: naming.AddrFailed, Err: errors.New(a.Cause)}
	case api.AddrPending:
		return naming.Addr{State: naming.AddrPending}
	default:
		return naming.Addr{State: naming.AddrNeg}
	}
}

// follow keeps one stream open until ctx ends: documents go to apply; a
// stream that ends after delivering documents is reopened at once, failures
// are retried after a jittered, doubling pause.
func (in *Interpreter) follow(ctx context.Context, path string, q url.Values, apply func([]byte) error) {
	remote.Retry(ctx, in.o.RetryBase, in.o.RetryMax, func(a remote.Attempt) error {
		docs := 0
		err := in.cli.Stream(ctx, path, q, func(doc []byte) error {
			docs++
			if err := apply(doc); err != nil {
				// namerd is up, if confused: the backoff starts afresh,
				// but the state page counts no answer.
				a.Reached()
				return err
			}
			a.Answered()
			return nil
		})
		if err == nil && docs == 0 {
			return errors.New("stream ended without a document")
		}
		return err
	}, func(err error, retryIn time.Duration) {
		in.log.Warn("namerd stream failed; retrying", "path", path, "query", q.Encode(), "err", err, "retry_in", retryIn)
	})
}

var _ naming.Interpreter = (*Interpreter)(nil)
