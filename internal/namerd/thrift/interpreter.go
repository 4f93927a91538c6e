package thrift

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/remote"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// InterpreterKind is the router interpreter that asks namerd over
// ThriftMux.
const InterpreterKind = "io.l5d.namerd"

func init() {
	config.Register[naming.InterpreterConfig](InterpreterKind, func() naming.InterpreterConfig { return new(InterpreterConfig) })
}

// InterpreterConfig is a router's `interpreter: {kind: io.l5d.namerd}`
// block (Linkerd's keys):
//
//	interpreter:
//	  kind: io.l5d.namerd
//	  dst: /$/inet/namerd.default.svc.cluster.local/4100
//	  namespace: internal
//	  retry: {baseSeconds: 5, maxSeconds: 600}
type InterpreterConfig struct {
	// Dst names namerd's thrift interface; it is bound with the router's
	// namers and the /$/ system namers.
	Dst string `yaml:"dst" config:"required"`
	// Namespace is the namerd dtab namespace (default "default").
	Namespace        string                  `yaml:"namespace"`
	Retry            InterpreterRetry        `yaml:"retry"`
	TLS              *InterpreterTLS         `yaml:"tls"`
	FailureThreshold *FailureThresholdConfig `yaml:"failureThreshold"`
	// Transformers rewrite every bound tree, in order (config.md §4.7).
	Transformers []config.Kinded[naming.TransformerConfig] `yaml:"transformers"`
	// Experimental is accepted for compatibility.
	Experimental bool `yaml:"experimental"`

	dst dtab.Path
}

// InterpreterRetry is the reconnect backoff: jittered, doubling from
// BaseSeconds up to MaxSeconds.
type InterpreterRetry struct {
	BaseSeconds int `yaml:"baseSeconds"`
	MaxSeconds  int `yaml:"maxSeconds"`
}

// InterpreterTLS is Linkerd's namerd client TLS block.
type InterpreterTLS struct {
	CommonName string `yaml:"commonName" config:"required"`
	CACert     string `yaml:"caCert"`
}

// FailureThresholdConfig configures the session failure detector (see
// remote.FailureThreshold). threshold and windowSize tune Finagle's
// latency-based detector and are accepted for compatibility.
type FailureThresholdConfig struct {
	remote.FailureThreshold `yaml:",inline"`
	Threshold               float64 `yaml:"threshold"`
	WindowSize              int     `yaml:"windowSize"`
}

// SetDefaults implements config.Defaulter (Linkerd's: a ping every 5 s,
// closed after 4 s unanswered).
func (f *FailureThresholdConfig) SetDefaults() {
	*f = FailureThresholdConfig{FailureThreshold: remote.FailureThreshold{MinPeriodMs: 5000, CloseTimeoutMs: 4000}, Threshold: 2, WindowSize: 100}
}

// SetDefaults implements config.Defaulter.
func (c *InterpreterConfig) SetDefaults() {
	c.Namespace = "default"
	c.Retry = InterpreterRetry{BaseSeconds: 5, MaxSeconds: 600}
}

// Validate implements config.Validator.
func (c *InterpreterConfig) Validate() error {
	p, err := remote.ParseDst(c.Dst, "/$/inet/127.0.0.1/4100")
	if err != nil {
		return err
	}
	c.dst = p
	if c.Namespace == "" {
		return config.FieldError("namespace", "must not be empty")
	}
	if c.Retry.BaseSeconds <= 0 || c.Retry.MaxSeconds <= 0 || c.Retry.BaseSeconds > c.Retry.MaxSeconds {
		return config.FieldError("retry", "illegal retry values: baseSeconds=%d maxSeconds=%d (need 0 < baseSeconds <= maxSeconds)", c.Retry.BaseSeconds, c.Retry.MaxSeconds)
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
	var tc *tls.Config
	if c.TLS != nil {
		o := tlsconf.ClientOptions{CommonName: c.TLS.CommonName, Logger: log}
		if c.TLS.CACert != "" {
			o.TrustCerts = []string{c.TLS.CACert}
		}
		cl, err := tlsconf.NewClient(o)
		if err != nil {
			return nil, fmt.Errorf("interpreter.tls: %w", err)
		}
		go tlsconf.Watch(ctx, cl, 10*time.Second, func(err error) {
			log.Warn("reloading TLS files for namerd failed; keeping the previous ones", "err", err)
		})
		if tc, err = cl.Config(nil); err != nil {
			return nil, fmt.Errorf("interpreter.tls: %w", err)
		}
	}
	trans, err := naming.NewTransformers(env.Env, c.Transformers)
	if err != nil {
		return nil, err
	}
	ft := c.FailureThreshold
	if ft == nil {
		ft = new(FailureThresholdConfig)
		ft.SetDefaults()
	}
	return NewInterpreter(ctx, InterpreterOptions{
		Namespace:    c.Namespace,
		Dst:          c.Dst,
		Dial:         remote.DialDst(ctx, env.Namers, c.dst),
		TLS:          tc,
		RetryBase:    time.Duration(c.Retry.BaseSeconds) * time.Second,
		RetryMax:     time.Duration(c.Retry.MaxSeconds) * time.Second,
		PingEvery:    ft.PingEvery(),
		PingTimeout:  ft.PingTimeout(),
		Transformers: trans,
		Scope:        env.Scope.Scope("interpreter", InterpreterKind),
		Logger:       log.With("interpreter", InterpreterKind, "namespace", c.Namespace),
	}), nil
}

// InterpreterOptions configure NewInterpreter.
type InterpreterOptions struct {
	// Namespace is the namerd dtab namespace.
	Namespace string
	// Dial connects to namerd's thrift interface (one of its replicas).
	Dial func(ctx context.Context) (net.Conn, error)
	// Dst says where Dial goes (the config's dst), for people to read.
	Dst string
	// TLS, when set, secures the connection.
	TLS *tls.Config
	// RetryBase and RetryMax bound the jittered backoff after failures.
	RetryBase, RetryMax time.Duration
	// PingEvery and PingTimeout drive the session failure detector (off
	// when PingEvery is 0).
	PingEvery, PingTimeout time.Duration
	// ClientID is sent with every request (Linkerd sends the empty path).
	ClientID dtab.Path
	// Transformers rewrite every bound tree namerd sends, in order.
	Transformers []naming.Transformer
	// Scope receives Linkerd's interpreter metrics: bind/success,
	// bind/failure, addr/success, addr/failure, bindcache.size,
	// addrcache.size.
	Scope  telemetry.Scope
	Logger *slog.Logger
}

// Interpreter binds names by long-polling namerd's Namer service over one
// ThriftMux session: one outstanding bind per (dtab, path) being watched
// and one addr per bound id, as Linkerd's ThriftNamerClient. Polls start
// with the first subscriber and stop with the last. When namerd is
// unreachable the last known state is kept and the poll retried with
// jittered, doubling backoff; failures namerd reports (BindFailure,
// AddrFailure) make the state Failed until namerd answers again.
type Interpreter struct {
	o    InterpreterOptions
	cli  *muxClient
	log  *slog.Logger
	cid  [][]byte
	bind *remote.Watches[watch.Activity[naming.BoundTree]] // by dtab text + "\x00" + path
	addr *remote.Watches[naming.Addr]                      // by bound id

	metrics remote.Metrics
}

// NewInterpreter returns an interpreter; its polls and session end when
// ctx does.
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
	if o.PingTimeout <= 0 {
		o.PingTimeout = 4 * time.Second
	}
	in := &Interpreter{
		o: o, log: o.Logger, cid: fromPath(o.ClientID),
		cli:  newMuxClient(o.Dial, o.TLS, o.PingEvery, o.PingTimeout),
		bind: remote.NewWatches(ctx, watch.PendingActivity[naming.BoundTree]()),
		addr: remote.NewWatches(ctx, naming.Addr{State: naming.AddrPending}),
	}
	in.metrics = remote.NewMetrics(o.Scope, in.bind, in.addr)
	go func() {
		<-ctx.Done()
		in.cli.close()
	}()
	return in
}

// Bind implements naming.Interpreter. Identical bindings watched at the
// same time share one poll, running while they have subscribers.
func (in *Interpreter) Bind(d dtab.Dtab, path dtab.Path) naming.Binding {
	text := d.String()
	return in.bind.Value(remote.BindKey(text, path.String()), func(ctx context.Context, v *watch.Var[watch.Activity[naming.BoundTree]]) {
		in.pollBind(ctx, v, text, path)
	})
}

func (in *Interpreter) pollBind(ctx context.Context, v *watch.Var[watch.Activity[naming.BoundTree]], dtabText string, path dtab.Path) {
	trees := remote.NewTrees(in.addrValue, in.o.Transformers)
	tpath := fromPath(path)
	var stamp []byte
	remote.Retry(ctx, in.o.RetryBase, in.o.RetryMax, func(a remote.Attempt) error {
		var res Bound
		var failure BindFailure
		err := in.cli.call(ctx, MethodBind, &BindReq{Dtab: dtabText, Name: NameRef{Stamp: stamp, Name: tpath, Ns: in.o.Namespace}, ClientID: in.cid}, &res, &failure)
		if ctx.Err() != nil {
			return nil // the watch ended: nobody wants the answer
		}
		var bf *BindFailure
		switch {
		case errors.As(err, &bf):
			return &refusal{bf.Reason}
		case err != nil:
			return err
		}
		in.metrics.BindOK.Inc()
		a.Answered()
		stamp = res.Stamp
		tree, err := trees.Convert(func(leaf remote.Leaf) (naming.BoundTree, error) {
			return boundTree(res.Tree, leaf)
		})
		if err != nil {
			v.Set(watch.FailedActivity[naming.BoundTree](err))
			return nil
		}
		v.Set(watch.OkActivity(tree))
		return nil
	}, func(err error, _ time.Duration) {
		in.metrics.BindFailed.Inc()
		var r *refusal
		if !errors.As(err, &r) {
			in.log.Warn("namerd bind request failed; keeping the last state", "path", path.String(), "err", err)
			stamp = nil
			return
		}
		// retryInSeconds is deprecated and ignored (namer.thrift); the
		// router backoff applies.
		// A router that has a binding keeps it, as Linkerd's does; one
		// that has none learns why at once instead of waiting.
		in.log.Warn("namerd could not bind", "path", path.String(), "dtab", dtabText, "reason", r.reason)
		if v.Get().State != watch.Ok {
			v.Set(watch.FailedActivity[naming.BoundTree](r))
		}
	})
}

// refusal is a failure namerd answered with (BindFailure, AddrFailure)
// rather than a failed request: namerd is up but cannot do what was
// asked, and says why.
type refusal struct{ reason string }

func (e *refusal) Error() string { return "namerd: " + e.reason }

// maxTreeDepth bounds the nesting of a bound tree from namerd (node ids
// could otherwise form a cycle).
const maxTreeDepth = 100

// boundTree converts namerd's flattened tree; leaf gives the Bound of
// each of its leaves (see remote.Trees).
func boundTree(t BoundTree, leaf remote.Leaf) (naming.BoundTree, error) {
	var mk func(n BoundNode, depth int) (naming.BoundTree, error)
	node := func(id int32, depth int) (naming.BoundTree, error) {
		n, ok := t.Nodes[id]
		if !ok {
			return naming.BoundTree{}, fmt.Errorf("namerd sent a bound tree with unknown node id %d", id)
		}
		return mk(n, depth+1)
	}
	mk = func(n BoundNode, depth int) (naming.BoundTree, error) {
		if depth > maxTreeDepth {
			return naming.BoundTree{}, errors.New("namerd sent a bound tree nested too deeply (or cyclic)")
		}
		switch n.Kind {
		case NodeEmpty:
			return dtab.EmptyTree[*naming.Bound](), nil
		case NodeFail:
			return dtab.FailTree[*naming.Bound](), nil
		case NodeLeaf:
			return dtab.LeafTree(leaf(toPath(n.Leaf.ID), toPath(n.Leaf.Residual))), nil
		case NodeAlt:
			alts := make([]naming.BoundTree, len(n.Alt))
			for i, id := range n.Alt {
				var err error
				if alts[i], err = node(id, depth); err != nil {
					return naming.BoundTree{}, err
				}
			}
			return dtab.AltTree(alts...), nil
		case NodeWeighted:
			ws := make([]dtab.Weighted[*naming.Bound], len(n.Weighted))
			for i, w := range n.Weighted {
				sub, err := node(w.ID, depth)
				if err != nil {
					return naming.BoundTree{}, err
				}
				ws[i] = dtab.Weighted[*naming.Bound]{Weight: w.Weight, Tree: sub}
			}
			return dtab.UnionTree(ws...), nil
		}
		return dtab.NegTree[*naming.Bound](), nil
	}
	return mk(t.Root, 0)
}

// addrValue is a bound leaf's address set: an addr poll shared by every
// leaf with the same id, running while subscribed.
func (in *Interpreter) addrValue(id dtab.Path) watch.Value[naming.Addr] {
	return in.addr.Value(id.String(), func(ctx context.Context, v *watch.Var[naming.Addr]) {
		in.pollAddr(ctx, v, id)
	})
}

func (in *Interpreter) pollAddr(ctx context.Context, v *watch.Var[naming.Addr], id dtab.Path) {
	tid := fromPath(id)
	var stamp []byte
	remote.Retry(ctx, in.o.RetryBase, in.o.RetryMax, func(a remote.Attempt) error {
		var res Addr
		var failure AddrFailure
		err := in.cli.call(ctx, MethodAddr, &AddrReq{Name: NameRef{Stamp: stamp, Name: tid, Ns: in.o.Namespace}, ClientID: in.cid}, &res, &failure)
		if ctx.Err() != nil {
			return nil // the watch ended: nobody wants the answer
		}
		var af *AddrFailure
		switch {
		case errors.As(err, &af):
			return &refusal{af.Reason}
		case err != nil:
			return err
		}
		in.metrics.AddrOK.Inc()
		a.Answered()
		stamp = res.Stamp
		v.Set(namingAddr(res))
		return nil
	}, func(err error, _ time.Duration) {
		in.metrics.AddrFailed.Inc()
		var r *refusal
		if !errors.As(err, &r) {
			in.log.Warn("namerd addr request failed; keeping the last state", "id", id.String(), "err", err)
			stamp = nil
			return
		}
		in.log.Warn("namerd could not resolve addresses", "id", id.String(), "reason", r.reason)
		if v.Get().State != naming.AddrBound {
			v.Set(naming.Addr{State: naming.AddrFailed, Err: r})
		}
	})
}

// namingAddr converts an addr answer. Malformed addresses (an IP of the
// wrong length, a port out of range) are left out.
func namingAddr(a Addr) naming.Addr {
	if a.Bound == nil {
		return naming.Addr{State: naming.AddrNeg}
	}
	out := naming.Addr{State: naming.AddrBound, Addrs: make([]naming.Address, 0, len(a.Bound.Addresses)), Meta: metaMap(a.Bound.Meta)}
	seen := map[string]bool{}
	for _, ta := range a.Bound.Addresses {
		if (len(ta.IP) != 4 && len(ta.IP) != 16) || ta.Port < 0 || ta.Port > 65535 {
			continue
		}
		x := naming.Address{Host: net.IP(ta.IP).String(), Port: int(ta.Port), Weight: 1, Meta: metaMap(ta.Meta)}
		if ta.Meta != nil && ta.Meta.Weight != nil && *ta.Meta.Weight >= 0 {
			x.Weight = *ta.Meta.Weight
		}
		if k := x.HostPort(); !seen[k] { // a set on the wire
			seen[k] = true
			out.Addrs = append(out.Addrs, x)
		}
	}
	return out
}

func metaMap(m *AddrMeta) map[string]any {
	if m == nil {
		return nil
	}
	out := map[string]any{}
	if m.Authority != nil {
		out[MetaAuthority] = *m.Authority
	}
	if m.NodeName != nil {
		out[MetaNodeName] = *m.NodeName
	}
	if m.Weight != nil {
		out["endpoint_addr_weight"] = *m.Weight
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

var _ naming.Interpreter = (*Interpreter)(nil)
