package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/remote"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// InterpreterOptions configure NewInterpreter.
type InterpreterOptions struct {
	// Namespace is the namerd dtab namespace (the root path's element).
	Namespace string
	// Dial connects to namerd's io.l5d.mesh interface (one of its
	// replicas).
	Dial func(ctx context.Context) (net.Conn, error)
	// Dst says where Dial goes (the config's dst), for people to read.
	Dst string
	// TLS, when set, secures the connection.
	TLS *tls.Config
	// RetryBase and RetryMax bound the jittered backoff between attempts
	// to reopen a stream (and to reconnect).
	RetryBase, RetryMax time.Duration
	// PingEvery and PingTimeout drive the HTTP/2 keepalive (off when
	// PingEvery is 0; gRPC pings at most every 10 s).
	PingEvery, PingTimeout time.Duration
	// StreamWindowSize is the HTTP/2 stream window, in bytes (gRPC's
	// default when 0).
	StreamWindowSize int32
	// Transformers rewrite every bound tree namerd sends, in order.
	Transformers []naming.Transformer
	// Scope receives bind/success, bind/failure, addr/success,
	// addr/failure, bindcache.size and addrcache.size.
	Scope  telemetry.Scope
	Logger *slog.Logger
}

// Interpreter is a router's io.l5d.mesh interpreter: it binds names by
// streaming from namerd's Interpreter service (one StreamBoundTree per
// (dtab, path) being watched) and resolves bound ids with its Resolver
// service (one StreamReplicas per id), over one gRPC connection. Streams
// start with the first subscriber and stop with the last. When namerd is
// unreachable or a stream breaks, the last known state is kept and the
// stream reopened with jittered, doubling backoff; an error namerd
// reports (a bad dtab, say) makes a state that was never Ok Failed.
type Interpreter struct {
	o    InterpreterOptions
	conn *grpc.ClientConn
	log  *slog.Logger
	root *Path
	bind *remote.Watches[watch.Activity[naming.BoundTree]] // by dtab text + "\x00" + path
	addr *remote.Watches[naming.Addr]                      // by bound id

	metrics remote.Metrics
}

// minPing is gRPC's floor for client keepalive pings.
const minPing = 10 * time.Second

// NewInterpreter returns an interpreter; its streams and connection end
// when ctx does.
func NewInterpreter(ctx context.Context, o InterpreterOptions) *Interpreter {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.RetryMax < o.RetryBase {
		o.RetryMax = o.RetryBase
	}
	creds := insecure.NewCredentials()
	if o.TLS != nil {
		creds = credentials.NewTLS(o.TLS)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return o.Dial(ctx) }),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: o.RetryBase, Multiplier: 1.6, Jitter: 0.2, MaxDelay: o.RetryMax},
			MinConnectTimeout: 20 * time.Second,
		}),
	}
	if o.StreamWindowSize > 0 {
		opts = append(opts, grpc.WithInitialWindowSize(o.StreamWindowSize))
	}
	if o.PingEvery > 0 {
		timeout := o.PingTimeout
		if timeout <= 0 {
			timeout = 20 * time.Second
		}
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: max(o.PingEvery, minPing), Timeout: timeout, PermitWithoutStream: true}))
	}
	// The target is a label: every connection goes through Dial. NewClient
	// only fails on malformed options, which these are not.
	conn, err := grpc.NewClient("passthrough:///"+Kind, opts...)
	if err != nil {
		panic(fmt.Sprintf("mesh: grpc.NewClient: %v", err))
	}
	in := &Interpreter{
		o: o, conn: conn, log: o.Logger,
		root: &Path{Elems: [][]byte{[]byte(o.Namespace)}},
		bind: remote.NewWatches(ctx, watch.PendingActivity[naming.BoundTree]()),
		addr: remote.NewWatches(ctx, naming.Addr{State: naming.AddrPending}),
	}
	in.metrics = remote.NewMetrics(o.Scope, in.bind, in.addr)
	go func() {
		<-ctx.Done()
		_ = conn.Close()
	}()
	return in
}

// errStreamEnded is a stream that namerd closed without an error: the
// stream is reopened like a broken one.
var errStreamEnded = errors.New("namerd ended the stream")

// stream opens a server stream of method with req and hands every message
// to got (newRsp makes the message to decode into) until the stream fails
// or ctx ends.
func (in *Interpreter) stream(ctx context.Context, method string, req Message, newRsp func() Message, got func(Message) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := in.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method, callCodec)
	if err != nil {
		return err
	}
	if err := st.SendMsg(req); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	for {
		m := newRsp()
		if err := st.RecvMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				return errStreamEnded
			}
			return err
		}
		if err := got(m); err != nil {
			return err
		}
	}
}

// reported says whether err is namerd's answer about the request (which
// reopening the stream will not change soon) rather than a transport
// failure or namerd going away.
func reported(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.Unimplemented, codes.Internal, codes.OutOfRange:
		return true
	}
	return false
}

// Bind implements naming.Interpreter. Identical bindings watched at the
// same time share one stream, open while they have subscribers.
func (in *Interpreter) Bind(d dtab.Dtab, path dtab.Path) naming.Binding {
	text := d.String()
	return in.bind.Value(remote.BindKey(text, path.String()), func(ctx context.Context, v *watch.Var[watch.Activity[naming.BoundTree]]) {
		in.streamBind(ctx, v, d, path)
	})
}

func (in *Interpreter) streamBind(ctx context.Context, v *watch.Var[watch.Activity[naming.BoundTree]], d dtab.Dtab, path dtab.Path) {
	trees := remote.NewTrees(in.addrValue, in.o.Transformers)
	req := &BindReq{Root: in.root, Name: pathToWire(path), Dtab: dtabToWire(d)}
	remote.Retry(ctx, in.o.RetryBase, in.o.RetryMax, func(a remote.Attempt) error {
		return in.stream(ctx, MethodStreamBoundTree, req, func() Message { return new(BoundTreeRsp) }, func(m Message) error {
			rsp := m.(*BoundTreeRsp)
			tree, err := trees.Convert(func(leaf remote.Leaf) (naming.BoundTree, error) {
				return boundTree(rsp.Tree, leaf)
			})
			if err != nil {
				return status.Errorf(codes.Internal, "namerd sent a bad bound tree: %v", err)
			}
			in.metrics.BindOK.Inc()
			a.Answered()
			v.Set(watch.OkActivity(tree))
			return nil
		})
	}, func(err error, _ time.Duration) {
		in.metrics.BindFailed.Inc()
		if reported(err) {
			in.log.Warn("namerd could not bind", "path", path.String(), "dtab", d.String(), "err", err)
			// A router that has a binding keeps it; one that has none
			// learns why at once instead of waiting.
			if v.Get().State != watch.Ok {
				v.Set(watch.FailedActivity[naming.BoundTree](fmt.Errorf("namerd: %s", status.Convert(err).Message())))
			}
		} else {
			in.log.Warn("namerd bind stream failed; keeping the last state", "path", path.String(), "err", err)
		}
	})
}

// boundTree converts a bound tree; leaf gives the Bound of each of its
// leaves (see remote.Trees).
func boundTree(t *NameTree, leaf remote.Leaf) (naming.BoundTree, error) {
	var mk func(t *NameTree) (naming.BoundTree, error)
	mk = func(t *NameTree) (naming.BoundTree, error) {
		if t == nil {
			return naming.BoundTree{}, errNoTree
		}
		switch t.Kind {
		case TreeNeg:
			return dtab.NegTree[*naming.Bound](), nil
		case TreeFail:
			return dtab.FailTree[*naming.Bound](), nil
		case TreeEmpty:
			return dtab.EmptyTree[*naming.Bound](), nil
		case TreeLeaf:
			if t.Leaf == nil || t.Leaf.ID == nil {
				return naming.BoundTree{}, errors.New("leaf without id")
			}
			id, err := pathFromWire(t.Leaf.ID)
			if err != nil {
				return naming.BoundTree{}, err
			}
			res, err := pathFromWire(t.Leaf.Residual)
			if err != nil {
				return naming.BoundTree{}, err
			}
			return dtab.LeafTree(leaf(id, res)), nil
		case TreeAlt:
			alts := make([]naming.BoundTree, len(t.Alt))
			for i := range t.Alt {
				var err error
				if alts[i], err = mk(&t.Alt[i]); err != nil {
					return naming.BoundTree{}, err
				}
			}
			return dtab.AltTree(alts...), nil
		case TreeUnion:
			ws := make([]dtab.Weighted[*naming.Bound], len(t.Union))
			for i, w := range t.Union {
				sub, err := mk(w.Tree)
				if err != nil {
					return naming.BoundTree{}, err
				}
				ws[i] = dtab.Weighted[*naming.Bound]{Weight: w.Weight, Tree: sub}
			}
			return dtab.UnionTree(ws...), nil
		}
		return naming.BoundTree{}, errNoTree
	}
	return mk(t)
}

// addrValue is a bound leaf's address set: a StreamReplicas shared by
// every leaf with the same id, open while subscribed.
func (in *Interpreter) addrValue(id dtab.Path) watch.Value[naming.Addr] {
	return in.addr.Value(id.String(), func(ctx context.Context, v *watch.Var[naming.Addr]) {
		in.streamAddr(ctx, v, id)
	})
}

func (in *Interpreter) streamAddr(ctx context.Context, v *watch.Var[naming.Addr], id dtab.Path) {
	req := &ReplicasReq{ID: pathToWire(id)}
	remote.Retry(ctx, in.o.RetryBase, in.o.RetryMax, func(a remote.Attempt) error {
		return in.stream(ctx, MethodStreamReplicas, req, func() Message { return new(Replicas) }, func(m Message) error {
			r := addrFromReplicas(m.(*Replicas))
			if r.State == naming.AddrFailed {
				in.metrics.AddrFailed.Inc()
			} else {
				in.metrics.AddrOK.Inc()
			}
			a.Answered()
			// A pending answer does not hide a known address set.
			if r.State != naming.AddrPending || v.Get().State == naming.AddrPending {
				v.Set(r)
			}
			return nil
		})
	}, func(err error, _ time.Duration) {
		in.metrics.AddrFailed.Inc()
		if reported(err) && v.Get().State == naming.AddrPending {
			v.Set(naming.Addr{State: naming.AddrFailed, Err: fmt.Errorf("namerd: %s", status.Convert(err).Message())})
		}
		in.log.Warn("namerd replicas stream failed; keeping the last state", "id", id.String(), "err", err)
	})
}

// Explain implements naming.Explainer with namerd's GetDelegateTree, so a
// router's admin delegator works when the router follows namerd. The
// address sets of the bound leaves are fetched once each.
func (in *Interpreter) Explain(ctx context.Context, d dtab.Dtab, path dtab.Path) (naming.DelegateNode, error) {
	req := &DelegateTreeReq{Root: in.root, Tree: nameTreeToWire(dtab.LeafTree(path)), Dtab: dtabToWire(d)}
	var rsp DelegateTreeRsp
	if err := in.conn.Invoke(ctx, MethodGetDelegateTree, req, &rsp, callCodec); err != nil {
		return naming.DelegateNode{}, fmt.Errorf("namerd: %s", status.Convert(err).Message())
	}
	if rsp.Tree == nil {
		return naming.DelegateNode{}, errors.New("namerd sent no delegate tree")
	}
	return in.delegateNode(ctx, rsp.Tree)
}

func (in *Interpreter) delegateNode(ctx context.Context, t *DelegateTree) (naming.DelegateNode, error) {
	p, err := pathFromWire(t.Path)
	if err != nil {
		return naming.DelegateNode{}, err
	}
	out := naming.DelegateNode{Path: p}
	if !isNop(t.Dentry) && t.Kind != TreeTransformation {
		de, err := dentryFromWire(t.Dentry)
		if err != nil {
			return out, fmt.Errorf("namerd sent a bad dentry: %w", err)
		}
		out.Dentry = &de
	}
	child := func(c *DelegateTree) (*naming.DelegateNode, error) {
		if c == nil {
			return nil, errors.New("namerd sent a delegate node without its child")
		}
		n, err := in.delegateNode(ctx, c)
		return &n, err
	}
	leaf := func(l *Leaf) (*naming.Bound, error) {
		if l == nil || l.ID == nil {
			return nil, errors.New("namerd sent a leaf without id")
		}
		id, err := pathFromWire(l.ID)
		if err != nil {
			return nil, err
		}
		res, err := pathFromWire(l.Residual)
		return &naming.Bound{ID: id, Residual: res}, err
	}
	switch t.Kind {
	case TreeNeg:
		out.Kind = naming.DelegateNeg
	case TreeFail:
		out.Kind = naming.DelegateFail
	case TreeEmpty:
		out.Kind = naming.DelegateEmpty
	case TreeException:
		out.Kind, out.Message = naming.DelegateException, t.Exception
	case TreeDelegate:
		out.Kind = naming.DelegateDelegated
		out.Child, err = child(t.Delegate)
	case TreeTransformation:
		out.Kind = naming.DelegateTransformation
		if tr := t.Transformation; tr != nil {
			out.Name = tr.Name
			if tr.Leaf != nil {
				if out.Bound, err = leaf(tr.Leaf); err != nil {
					return out, err
				}
			}
			out.Child, err = child(tr.Tree)
		} else {
			err = errors.New("namerd sent an empty transformation")
		}
	case TreeLeaf:
		out.Kind = naming.DelegateLeaf
		if out.Bound, err = leaf(t.Leaf); err != nil {
			return out, err
		}
		out.Addr = in.addrOnce(ctx, out.Bound.ID)
		out.Bound.Addr = watch.Const[naming.Addr]{V: out.Addr}
	case TreeAlt:
		out.Kind = naming.DelegateAlt
		for i := range t.Alt {
			c, err := child(&t.Alt[i])
			if err != nil {
				return out, err
			}
			out.Alts = append(out.Alts, *c)
		}
	case TreeUnion:
		out.Kind = naming.DelegateUnion
		for _, w := range t.Union {
			c, err := child(w.Tree)
			if err != nil {
				return out, err
			}
			out.Branches = append(out.Branches, naming.DelegateBranch{Weight: w.Weight, Tree: *c})
		}
	default:
		return out, errors.New("namerd sent a delegate node of no kind")
	}
	return out, err
}

// addrOnce asks namerd for an id's current address set.
func (in *Interpreter) addrOnce(ctx context.Context, id dtab.Path) naming.Addr {
	var rsp Replicas
	if err := in.conn.Invoke(ctx, MethodGetReplicas, &ReplicasReq{ID: pathToWire(id)}, &rsp, callCodec); err != nil {
		return naming.Addr{State: naming.AddrFailed, Err: fmt.Errorf("namerd: %s", status.Convert(err).Message())}
	}
	return addrFromReplicas(&rsp)
}

var (
	_ naming.Interpreter = (*Interpreter)(nil)
	_ naming.Explainer   = (*Interpreter)(nil)
)
