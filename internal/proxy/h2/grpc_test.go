package h2

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// testService is the gRPC interop TestService (grpc_testing), implemented
// here with the behaviour the interop server has for the calls used, plus
// hooks the tests observe: the metadata it received and what it saw of
// the caller's deadline.
type testService struct {
	testpb.UnimplementedTestServiceServer
	// seen receives the incoming metadata of each UnaryCall.
	seen chan metadata.MD
	// deadlines receives, for UnaryCalls that sleep, whether the context
	// had a deadline and the error it ended with.
	deadlines chan deadlineSeen
	// step, when set, makes StreamingOutputCall wait for a value before
	// sending each message after the first.
	step chan struct{}
	// outDone receives how each StreamingOutputCall that used step ended.
	outDone chan error
}

type deadlineSeen struct {
	had bool
	err error
}

func newTestService() *testService {
	return &testService{seen: make(chan metadata.MD, 16), deadlines: make(chan deadlineSeen, 4), outDone: make(chan error, 4)}
}

func payload(n int32) *testpb.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return &testpb.Payload{Body: b}
}

func (s *testService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func (s *testService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	select {
	case s.seen <- md:
	default:
	}
	if v := md.Get("x-sleep"); len(v) > 0 {
		_, had := ctx.Deadline()
		d, _ := time.ParseDuration(v[0])
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		s.deadlines <- deadlineSeen{had: had, err: ctx.Err()}
		return nil, ctx.Err()
	}
	if v := md.Get("x-echo"); len(v) > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-echo", v[0]))
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", v[0]+"-trailer"))
	}
	echoInterop(md, func(h metadata.MD) { _ = grpc.SetHeader(ctx, h) }, func(t metadata.MD) { _ = grpc.SetTrailer(ctx, t) })
	if st := in.GetResponseStatus(); st != nil && st.Code != 0 {
		return nil, status.Error(codes.Code(st.Code), st.Message)
	}
	return &testpb.SimpleResponse{Payload: payload(in.GetResponseSize())}, nil
}

func (s *testService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for i, p := range in.GetResponseParameters() {
		if i > 0 && s.step != nil {
			select {
			case <-s.step:
			case <-stream.Context().Done():
				s.outDone <- stream.Context().Err()
				return stream.Context().Err()
			}
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: payload(p.GetSize())}); err != nil {
			return err
		}
	}
	return nil
}

func (s *testService) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	var sum int32
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: sum})
		}
		if err != nil {
			return err
		}
		sum += int32(len(m.GetPayload().GetBody()))
	}
}

func (s *testService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	echoInterop(md, func(h metadata.MD) { _ = stream.SetHeader(h) }, stream.SetTrailer)
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if st := m.GetResponseStatus(); st != nil && st.Code != 0 {
			return status.Error(codes.Code(st.Code), st.Message)
		}
		for _, p := range m.GetResponseParameters() {
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: payload(p.GetSize())}); err != nil {
				return err
			}
		}
	}
}

// echoInterop echoes the interop custom_metadata keys as the interop
// server does: x-grpc-test-echo-initial as a header,
// x-grpc-test-echo-trailing-bin as a trailer.
func echoInterop(md metadata.MD, header, trailer func(metadata.MD)) {
	if v := md.Get("x-grpc-test-echo-initial"); len(v) > 0 {
		header(metadata.Pairs("x-grpc-test-echo-initial", v[0]))
	}
	if v := md.Get("x-grpc-test-echo-trailing-bin"); len(v) > 0 {
		trailer(metadata.Pairs("x-grpc-test-echo-trailing-bin", v[0]))
	}
}

// startGRPCBackend serves svc with a real grpc.Server on loopback.
func startGRPCBackend(t testing.TB, svc *testService, opts ...grpc.ServerOption) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(s, svc)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// grpcClient dials addr (a proxy) with a real gRPC client.
func grpcClient(t testing.TB, addr string, creds credentials.TransportCredentials) testpb.TestServiceClient {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

const testServiceName = "grpc.testing.TestService"

// grpcSetup is a real gRPC server behind the h2 proxy, with a gRPC client
// pointed at the proxy.
func grpcSetup(t *testing.T) (*testService, testpb.TestServiceClient, *testProxy) {
	t.Helper()
	svc := newTestService()
	backend := startGRPCBackend(t, svc)
	p := newTestProxy(t, map[string]string{testServiceName: backend}, proxyOpts{})
	return svc, grpcClient(t, p.Addr, nil), p
}

func TestGRPCUnaryLargePayloadAndMetadata(t *testing.T) {
	svc, c, p := grpcSetup(t)
	ctx := metadata.AppendToOutgoingContext(ctxTimeout(t, 10*time.Second), "x-echo", "hello")
	const reqSize, respSize = 3 << 20, 5 << 20
	var hdr, trl metadata.MD
	resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: respSize, Payload: payload(reqSize)},
		grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		t.Fatalf("UnaryCall through the proxy: %v", err)
	}
	if got := len(resp.GetPayload().GetBody()); got != respSize {
		t.Errorf("response payload = %d bytes, want %d", got, respSize)
	}
	if !bytes.Equal(resp.GetPayload().GetBody(), payload(respSize).Body) {
		t.Error("response payload corrupted in transit")
	}
	if got := hdr.Get("x-echo"); len(got) != 1 || got[0] != "hello" {
		t.Errorf("response header x-echo = %q, want [hello]", got)
	}
	if got := trl.Get("x-echo-trailer"); len(got) != 1 || got[0] != "hello-trailer" {
		t.Errorf("response trailer x-echo-trailer = %q, want [hello-trailer]", got)
	}
	md := <-svc.seen
	if got := md.Get("l5d-dst-service"); len(got) != 1 || got[0] != "/svc/"+testServiceName {
		t.Errorf("endpoint saw l5d-dst-service = %q", got)
	}
	if got := md.Get(":authority"); len(got) != 1 || got[0] != p.Addr {
		t.Errorf("endpoint saw :authority = %q, want the caller's %q", got, p.Addr)
	}
	if got := p.counter("rt/h2/server/127.0.0.1/0/requests"); got != 1 {
		t.Errorf("server requests = %d, want 1", got)
	}
}

func TestGRPCStatusCodesPreserved(t *testing.T) {
	_, c, _ := grpcSetup(t)
	for _, tc := range []struct {
		code codes.Code
		msg  string
	}{
		{codes.NotFound, "no such thing"},
		{codes.InvalidArgument, "bad 100% ünïcode\nsecond line"},
		{codes.Unavailable, "try later"},
		{codes.ResourceExhausted, ""},
	} {
		var trl metadata.MD
		_, err := c.UnaryCall(ctxTimeout(t, 5*time.Second), &testpb.SimpleRequest{
			ResponseStatus: &testpb.EchoStatus{Code: int32(tc.code), Message: tc.msg}}, grpc.Trailer(&trl))
		st, _ := status.FromError(err)
		if st.Code() != tc.code || st.Message() != tc.msg {
			t.Errorf("status = %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.msg)
		}
		if len(trl.Get("l5d-err")) != 0 {
			t.Errorf("an endpoint's status carried l5d-err: %q", trl.Get("l5d-err"))
		}
	}
}

func TestGRPCServerStreamingIsNotBuffered(t *testing.T) {
	svc, c, _ := grpcSetup(t)
	svc.step = make(chan struct{})
	const n = 8
	params := make([]*testpb.ResponseParameters, n)
	for i := range params {
		params[i] = &testpb.ResponseParameters{Size: int32(1000 * (i + 1))}
	}
	stream, err := c.StreamingOutputCall(ctxTimeout(t, 10*time.Second), &testpb.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		// The endpoint sends message i+1 only after the client has
		// received message i: a proxy that buffered would deadlock here.
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got := len(m.GetPayload().GetBody()); got != 1000*(i+1) {
			t.Fatalf("message %d is %d bytes, want %d", i, got, 1000*(i+1))
		}
		if i < n-1 {
			select {
			case svc.step <- struct{}{}:
			case <-time.After(5 * time.Second):
				t.Fatal("endpoint never asked for the next step")
			}
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v, want io.EOF (status OK from the trailers)", err)
	}
}

func TestGRPCClientStreaming(t *testing.T) {
	_, c, _ := grpcSetup(t)
	stream, err := c.StreamingInputCall(ctxTimeout(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var want int32
	for _, n := range []int32{27182, 8, 1828, 45904, 1 << 20} {
		if err := stream.Send(&testpb.StreamingInputCallRequest{Payload: payload(n)}); err != nil {
			t.Fatal(err)
		}
		want += n
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAggregatedPayloadSize() != want {
		t.Fatalf("aggregated size = %d, want %d", resp.GetAggregatedPayloadSize(), want)
	}
}

func TestGRPCBidiPingPong(t *testing.T) {
	_, c, _ := grpcSetup(t)
	stream, err := c.FullDuplexCall(ctxTimeout(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i, size := range []int32{31415, 9, 2653, 58979, 1} {
		// One request, then wait for its response before the next: the
		// proxy must forward each direction as it arrives.
		err := stream.Send(&testpb.StreamingOutputCallRequest{
			ResponseParameters: []*testpb.ResponseParameters{{Size: size}}, Payload: payload(int32(i + 1))})
		if err != nil {
			t.Fatal(err)
		}
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		if got := len(m.GetPayload().GetBody()); got != int(size) {
			t.Fatalf("pong %d is %d bytes, want %d", i, got, size)
		}
	}
	// A status sent mid-stream ends it with that status.
	if err := stream.Send(&testpb.StreamingOutputCallRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Aborted), Message: "stop"}}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if st, _ := status.FromError(err); st.Code() != codes.Aborted || st.Message() != "stop" {
		t.Fatalf("final status = %v, want Aborted \"stop\"", err)
	}
}

func TestGRPCDeadlinePropagation(t *testing.T) {
	svc, c, _ := grpcSetup(t)
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-sleep", "10s"), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.DeadlineExceeded {
		t.Fatalf("status = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("the call took %v, the deadline was 300ms", el)
	}
	select {
	case d := <-svc.deadlines:
		if !d.had {
			t.Error("the endpoint's context had no deadline: grpc-timeout was not forwarded")
		}
		if !errors.Is(d.err, context.DeadlineExceeded) && !errors.Is(d.err, context.Canceled) {
			t.Errorf("endpoint context ended with %v, want a deadline or cancellation", d.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the endpoint's call was never cancelled")
	}
}

func TestGRPCProxyErrorsAreGRPCStatuses(t *testing.T) {
	svc := newTestService()
	backend := startGRPCBackend(t, svc)
	p := newTestProxy(t, map[string]string{
		testServiceName: backend,
		"down":          freeAddr(t),
	}, proxyOpts{dtabText: "/svc => /#/test; /svc/grpc.testing.UnimplementedService => /#/test/down;"})
	cc, err := grpc.NewClient(p.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()

	// No route: a name the namer does not have. A trailers-only response
	// reaches grpc-go's caller as trailer metadata.
	var hdr metadata.MD
	err = cc.Invoke(ctxTimeout(t, 5*time.Second), "/no.such.Service/Call", &testpb.Empty{}, &testpb.Empty{}, grpc.Trailer(&hdr))
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "Unable to route request!") {
		t.Errorf("no route: status = %v %q, want Unavailable with the routing explanation", st.Code(), st.Message())
	}
	if v := hdr.Get("l5d-err"); len(v) != 1 {
		t.Errorf("no route: l5d-err = %q, want one value", v)
	} else if msg, _ := url.QueryUnescape(v[0]); !strings.Contains(msg, "/svc/no.such.Service") {
		t.Errorf("no route: l5d-err = %q, want it to name /svc/no.such.Service", msg)
	}

	// Connection refused: the request was never sent, so l5d-retryable.
	hdr = nil
	err = cc.Invoke(ctxTimeout(t, 5*time.Second), "/grpc.testing.UnimplementedService/UnimplementedCall", &testpb.Empty{}, &testpb.Empty{}, grpc.Trailer(&hdr))
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable {
		t.Errorf("connection refused: status = %v, want Unavailable", err)
	}
	if v := hdr.Get("l5d-retryable"); len(v) != 1 || v[0] != "true" {
		t.Errorf("connection refused: l5d-retryable = %q, want [true]", v)
	}

	// The endpoint's own UNIMPLEMENTED passes through unchanged.
	err = cc.Invoke(ctxTimeout(t, 5*time.Second), "/"+testServiceName+"/NoSuchMethod", &testpb.Empty{}, &testpb.Empty{})
	if st, _ := status.FromError(err); st.Code() != codes.Unimplemented {
		t.Errorf("unknown method: status = %v, want the endpoint's Unimplemented", err)
	}
}

func TestGRPCErrorWithClearContext(t *testing.T) {
	p := newTestProxy(t, map[string]string{}, proxyOpts{clear: true})
	cc, err := grpc.NewClient(p.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var hdr metadata.MD
	err = cc.Invoke(ctxTimeout(t, 5*time.Second), "/no.such.Service/Call", &testpb.Empty{}, &testpb.Empty{}, grpc.Trailer(&hdr))
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable {
		t.Errorf("status = %v, want Unavailable", err)
	}
	if strings.Contains(st.Message(), "dtab") {
		t.Errorf("clearContext leaked the routing explanation: %q", st.Message())
	}
	for k := range hdr {
		if strings.HasPrefix(k, "l5d-") {
			t.Errorf("clearContext leaked header %s", k)
		}
	}
}

func grpcTrailer(md *metadata.MD) grpc.CallOption { return grpc.Trailer(md) }
