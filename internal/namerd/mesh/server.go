package mesh

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/follow"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// DelegateTimeout bounds one GetDelegateTree (as namerd's HTTP delegate).
const DelegateTimeout = 2 * time.Second

// ServerOptions configure NewServer.
type ServerOptions struct {
	// Ctx ends every stream when it ends (the namerd process stopping).
	Ctx   context.Context
	Store storage.Store
	// Interpreter binds through the dtab given with namerd's namers and
	// the /$/ system namers; the Delegator needs it to be a
	// naming.Explainer.
	Interpreter naming.Interpreter
	Scope       telemetry.Scope
	Logger      *slog.Logger
}

// Server serves the io.linkerd.mesh services over gRPC: Interpreter,
// Resolver, Delegator and Codec, as namerd's io.l5d.mesh interface.
// Lookups are scoped by a root path of one element, the dtab namespace.
type Server struct {
	o      ServerOptions
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	grpc   *grpc.Server

	requests, streams *telemetry.Counter
	open              atomic.Int64
}

// NewServer returns a server; Serve starts it on a listener.
func NewServer(o ServerOptions) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Ctx == nil {
		o.Ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(o.Ctx)
	s := &Server{o: o, log: o.Logger, ctx: ctx, cancel: cancel}
	s.requests, s.streams = o.Scope.Counter("requests"), o.Scope.Counter("streams")
	o.Scope.Gauge("open_streams", func() float64 { return float64(s.open.Load()) })
	s.grpc = grpc.NewServer(
		grpc.ForceServerCodec(wireCodec{}),
		// Linkerd's failure detector pings every failureThreshold.minPeriodMs
		// (5 s by default); gRPC's default policy would answer such a
		// client with GOAWAY (too_many_pings).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		// Find routers that went away without closing their streams.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
	)
	s.register()
	return s
}

// Serve accepts connections on ln until Shutdown or Close, then returns
// http.ErrServerClosed (as net/http does, so callers treat both alike).
func (s *Server) Serve(ln net.Listener) error {
	err := s.grpc.Serve(ln)
	if err == nil || errors.Is(err, grpc.ErrServerStopped) {
		return http.ErrServerClosed
	}
	return err
}

// Shutdown ends every stream (routers reconnect elsewhere or later), stops
// accepting and waits for the handlers until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return ctx.Err()
	}
}

// Close stops the server at once.
func (s *Server) Close() error {
	s.cancel()
	s.grpc.Stop()
	return nil
}

// ---- service registration ----

func (s *Server) register() {
	s.grpc.RegisterService(&grpc.ServiceDesc{
		ServiceName: InterpreterService,
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{unary("GetBoundTree", s, s.getBoundTree)},
		Streams:     []grpc.StreamDesc{stream("StreamBoundTree", s, s.streamBoundTree)},
		Metadata:    "interpreter.proto",
	}, s)
	s.grpc.RegisterService(&grpc.ServiceDesc{
		ServiceName: ResolverService,
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{unary("GetReplicas", s, s.getReplicas)},
		Streams:     []grpc.StreamDesc{stream("StreamReplicas", s, s.streamReplicas)},
		Metadata:    "resolver.proto",
	}, s)
	s.grpc.RegisterService(&grpc.ServiceDesc{
		ServiceName: DelegatorService,
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{unary("GetDtab", s, s.getDtab), unary("GetDelegateTree", s, s.getDelegateTree)},
		Streams:     []grpc.StreamDesc{stream("StreamDtab", s, s.streamDtab), stream("StreamDelegateTree", s, s.streamDelegateTree)},
		Metadata:    "delegator.proto",
	}, s)
	s.grpc.RegisterService(&grpc.ServiceDesc{
		ServiceName: CodecService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unary("ReadDtab", s, readDtab), unary("ShowDtab", s, showDtab),
			unary("ReadPath", s, readPath), unary("ShowPath", s, showPath),
		},
		Metadata: "codec.proto",
	}, s)
}

// unary adapts h to a gRPC method handler; *R must be a Message.
func unary[R any](name string, s *Server, h func(ctx context.Context, req *R) (Message, error)) grpc.MethodDesc {
	return grpc.MethodDesc{MethodName: name, Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		s.requests.Inc()
		req := new(R)
		if err := dec(req); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "malformed request: %v", err)
		}
		rsp, err := h(ctx, req)
		if err != nil {
			return nil, err
		}
		return rsp, nil
	}}
}

// stream adapts h to a server-streaming handler; *R must be a Message.
func stream[R any](name string, s *Server, h func(ctx context.Context, req *R, send func(Message) error) error) grpc.StreamDesc {
	return grpc.StreamDesc{StreamName: name, ServerStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
		s.requests.Inc()
		s.streams.Inc()
		s.open.Add(1)
		defer s.open.Add(-1)
		req := new(R)
		if err := st.RecvMsg(req); err != nil {
			return status.Errorf(codes.InvalidArgument, "malformed request: %v", err)
		}
		ctx, cancel := context.WithCancel(st.Context())
		defer cancel()
		stop := context.AfterFunc(s.ctx, cancel)
		defer stop()
		err := h(ctx, req, func(m Message) error { return st.SendMsg(m) })
		if s.ctx.Err() != nil {
			return status.Error(codes.Unavailable, "namerd is shutting down")
		}
		return err
	}}
}

// ---- errors (Linkerd's namerd/iface/mesh Errors) ----

var (
	errNoRoot       = status.Error(codes.InvalidArgument, "No namespace specified")
	errRootNotFound = status.Error(codes.NotFound, "Root not found")
	errNoName       = status.Error(codes.NotFound, "No name given")
)

// namespace returns the namespace a root path names.
func namespace(root *Path) (string, error) {
	if root == nil {
		return "", errNoRoot
	}
	if len(root.Elems) != 1 || len(root.Elems[0]) == 0 {
		p, _ := pathFromWire(root)
		return "", status.Errorf(codes.InvalidArgument, "Invalid root: `%s` must have exactly one segment", p)
	}
	return string(root.Elems[0]), nil
}

// storeError is the status of a failed namespace observation: the store
// is unreachable (etcd down, say), which a retry may cure.
func storeError(ns string, err error) error {
	return status.Errorf(codes.Unavailable, "dtab namespace %q: %v", ns, err)
}

// bindError is the status of a failed binding.
func bindError(err error) error {
	if errors.Is(err, naming.ErrMaxDepth) {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func ctxError(err error) error {
	if st := status.FromContextError(err); st != nil {
		return st.Err()
	}
	return err
}

// sender drops a message equal to the previous one it sent.
type sender struct {
	send func(Message) error
	last []byte
	sent bool
}

func (d *sender) msg(m Message) error {
	b := m.AppendWire(nil)
	if d.sent && bytes.Equal(b, d.last) {
		return nil
	}
	if err := d.send(m); err != nil {
		return err
	}
	d.sent, d.last = true, b
	return nil
}

// watchBinding calls emit with every settled state of the binding of
// path through ns's dtab followed by extra (follow.Binding), until ctx
// ends (ctx's status error) or emit returns an error (that error). A
// failed observation of the store reaches emit as a Failed activity
// carrying an UNAVAILABLE status.
func (s *Server) watchBinding(ctx context.Context, ns string, extra dtab.Dtab, path dtab.Path, emit func(watch.Activity[naming.BoundTree]) error) error {
	err := follow.Binding(ctx, s.o.Store, s.o.Interpreter, ns, extra, path, func(a watch.Activity[naming.BoundTree]) error {
		var se *follow.StoreError
		if a.State == watch.Failed && errors.As(a.Err, &se) {
			a.Err = storeError(ns, se.Err)
		}
		return emit(a)
	})
	if err == nil {
		return ctxError(ctx.Err())
	}
	return err
}

// errStop ends a watch from its emit function without an error.
var errStop = errors.New("stop")

// bindArgs checks a BindReq.
func bindArgs(req *BindReq) (ns string, path dtab.Path, extra dtab.Dtab, err error) {
	if ns, err = namespace(req.Root); err != nil {
		return
	}
	if req.Name == nil || len(req.Name.Elems) == 0 {
		err = errNoName
		return
	}
	if path, err = pathFromWire(req.Name); err != nil {
		err = status.Errorf(codes.InvalidArgument, "Invalid name: %v", err)
		return
	}
	if extra, err = dtabFromWire(req.Dtab); err != nil {
		err = status.Errorf(codes.InvalidArgument, "Invalid dtab: %v", err)
	}
	return
}

// ---- Interpreter ----

func (s *Server) getBoundTree(ctx context.Context, req *BindReq) (Message, error) {
	ns, path, extra, err := bindArgs(req)
	if err != nil {
		return nil, err
	}
	var rsp *BoundTreeRsp
	err = s.watchBinding(ctx, ns, extra, path, func(a watch.Activity[naming.BoundTree]) error {
		if a.State == watch.Failed {
			return bindStateError(a.Err)
		}
		rsp = &BoundTreeRsp{Tree: boundTreeToWire(a.Value)}
		return errStop
	})
	if rsp != nil {
		return rsp, nil
	}
	return nil, err
}

// bindStateError keeps a store error's status; others are bind errors.
func bindStateError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return bindError(err)
}

func (s *Server) streamBoundTree(ctx context.Context, req *BindReq, send func(Message) error) error {
	ns, path, extra, err := bindArgs(req)
	if err != nil {
		return err
	}
	out := &sender{send: send}
	return s.watchBinding(ctx, ns, extra, path, func(a watch.Activity[naming.BoundTree]) error {
		if a.State == watch.Failed {
			// Linkerd ends the stream with the error; routers reopen it.
			return bindStateError(a.Err)
		}
		return out.msg(&BoundTreeRsp{Tree: boundTreeToWire(a.Value)})
	})
}

// ---- Resolver ----

var replicasNoID = &Replicas{Kind: ReplicasFailed, Message: "No ID provided"}

// watchReplicas calls emit with every non-pending address state of the
// concrete bound id, until ctx ends or emit returns an error. The id is
// bound with no dtab (namers and /$/ only), as Linkerd's ResolverService
// does.
func (s *Server) watchReplicas(ctx context.Context, id dtab.Path, emit func(*Replicas) error) error {
	err := follow.Addresses(ctx, s.o.Interpreter, id, func(a naming.Addr) error { return emit(replicasFromAddr(a)) })
	if err == nil {
		return ctxError(ctx.Err())
	}
	return err
}

func replicasID(req *ReplicasReq) (dtab.Path, bool) {
	if req.ID == nil || len(req.ID.Elems) == 0 {
		return nil, false
	}
	id, err := pathFromWire(req.ID)
	if err != nil {
		return nil, false
	}
	return naming.StripTransformerPrefix(id), true
}

func (s *Server) getReplicas(ctx context.Context, req *ReplicasReq) (Message, error) {
	id, ok := replicasID(req)
	if !ok {
		return replicasNoID, nil
	}
	var rsp *Replicas
	err := s.watchReplicas(ctx, id, func(r *Replicas) error { rsp = r; return errStop })
	if rsp != nil {
		return rsp, nil
	}
	return nil, err
}

func (s *Server) streamReplicas(ctx context.Context, req *ReplicasReq, send func(Message) error) error {
	id, ok := replicasID(req)
	if !ok {
		return send(replicasNoID)
	}
	out := &sender{send: send}
	return s.watchReplicas(ctx, id, func(r *Replicas) error { return out.msg(r) })
}

// ---- Delegator ----

// watchDtab calls emit with every non-pending observation of ns, until
// ctx ends or emit returns an error.
func (s *Server) watchDtab(ctx context.Context, ns string, emit func(watch.Activity[storage.Observation]) error) error {
	sig := follow.NewSignal()
	obs, cancel := follow.Follow(s.o.Store.Observe(ns), sig)
	defer cancel()
	var seen uint64
	for {
		select {
		case <-ctx.Done():
			return ctxError(ctx.Err())
		case <-sig:
		}
		a, gen := obs.Get()
		if gen == seen || a.State == watch.Pending {
			continue
		}
		seen = gen
		if err := emit(a); err != nil {
			return err
		}
	}
}

func dtabRsp(ns string, a watch.Activity[storage.Observation]) (*DtabRsp, error) {
	switch {
	case a.State == watch.Failed:
		return nil, storeError(ns, a.Err)
	case a.Value == nil:
		return nil, errRootNotFound
	}
	v := []byte(a.Value.Version)
	return &DtabRsp{Dtab: &VersionedDtab{Version: &v, Dtab: dtabToWire(a.Value.Dtab)}}, nil
}

func (s *Server) getDtab(ctx context.Context, req *DtabReq) (Message, error) {
	ns, err := namespace(req.Root)
	if err != nil {
		return nil, err
	}
	var rsp *DtabRsp
	err = s.watchDtab(ctx, ns, func(a watch.Activity[storage.Observation]) error {
		var err error
		if rsp, err = dtabRsp(ns, a); err != nil {
			return err
		}
		return errStop
	})
	if rsp != nil {
		return rsp, nil
	}
	return nil, err
}

// streamDtab sends the namespace's dtab at every change. As in Linkerd,
// an absent namespace ends the stream with NOT_FOUND.
func (s *Server) streamDtab(ctx context.Context, req *DtabReq, send func(Message) error) error {
	ns, err := namespace(req.Root)
	if err != nil {
		return err
	}
	out := &sender{send: send}
	return s.watchDtab(ctx, ns, func(a watch.Activity[storage.Observation]) error {
		rsp, err := dtabRsp(ns, a)
		if err != nil {
			return err
		}
		return out.msg(rsp)
	})
}

func (s *Server) getDelegateTree(ctx context.Context, req *DelegateTreeReq) (Message, error) {
	ns, err := namespace(req.Root)
	if err != nil {
		return nil, err
	}
	if req.Tree == nil {
		return nil, errNoName
	}
	tree, err := nameTreeFromWire(req.Tree)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid tree: %v", err)
	}
	if tree.Kind != dtab.Leaf {
		return nil, status.Errorf(codes.Unimplemented, "only a single path can be delegated, got %s", dtab.ShowTree(tree))
	}
	extra, err := dtabFromWire(req.Dtab)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid dtab: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, DelegateTimeout)
	defer cancel()
	var nsDtab dtab.Dtab
	err = s.watchDtab(ctx, ns, func(a watch.Activity[storage.Observation]) error {
		if a.State == watch.Failed {
			return storeError(ns, a.Err)
		}
		if a.Value != nil {
			nsDtab = a.Value.Dtab
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		return nil, err
	}
	n, err := naming.Delegate(ctx, s.o.Interpreter, nsDtab.Concat(extra), tree.Value)
	switch {
	case err == nil:
		return &DelegateTreeRsp{Tree: delegateToWire(n)}, nil
	case ctx.Err() != nil:
		return nil, ctxError(ctx.Err())
	case errors.Is(err, naming.ErrCannotExplain):
		return nil, status.Error(codes.Unimplemented, err.Error())
	default:
		return nil, bindError(err)
	}
}

// streamDelegateTree sends one answer (deprecated in Linkerd: "This
// method will only return one value").
func (s *Server) streamDelegateTree(ctx context.Context, req *DelegateTreeReq, send func(Message) error) error {
	rsp, err := s.getDelegateTree(ctx, req)
	if err != nil {
		return err
	}
	return send(rsp)
}

// ---- Codec ----

func readDtab(_ context.Context, req *ReadDtabReq) (Message, error) {
	d, err := dtab.Parse(req.Text)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &ReadDtabRsp{Dtab: dtabToWire(d)}, nil
}

func showDtab(_ context.Context, req *ShowDtabReq) (Message, error) {
	if req.Dtab == nil {
		return &ShowDtabRsp{}, nil
	}
	d, err := dtabFromWire(req.Dtab)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &ShowDtabRsp{Text: d.String()}, nil
}

func readPath(_ context.Context, req *ReadPathReq) (Message, error) {
	if req.Text == "" {
		return &ReadPathRsp{Path: &Path{}}, nil
	}
	p, err := dtab.ParsePath(req.Text)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &ReadPathRsp{Path: pathToWire(p)}, nil
}

func showPath(_ context.Context, req *ShowPathReq) (Message, error) {
	if req.Path == nil {
		return &ShowPathRsp{}, nil
	}
	p, err := pathFromWire(req.Path)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &ShowPathRsp{Text: p.String()}, nil
}
