package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// flakyService is a grpc.testing.TestService whose UnaryCall fails the
// first x-fail-times attempts of each x-id with status x-fail-code, and
// checks on every attempt that the request payload arrived whole (a
// retried request must be replayed byte for byte).
type flakyService struct {
	testpb.UnimplementedTestServiceServer
	mu       sync.Mutex
	attempts map[string]int
	lastMD   metadata.MD
}

func (s *flakyService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	s.mu.Lock()
	id := first("x-id")
	s.attempts[id]++
	n := s.attempts[id]
	s.lastMD = md
	s.mu.Unlock()
	if want, _ := strconv.Atoi(first("x-payload")); len(in.GetPayload().GetBody()) != want {
		return nil, status.Errorf(codes.InvalidArgument, "attempt %d: payload %d bytes, want %d", n, len(in.GetPayload().GetBody()), want)
	}
	if first("x-send-header") != "" {
		// Headers go out at once: a failure then ends the stream with
		// trailers (not a trailers-only response).
		if err := grpc.SendHeader(ctx, metadata.Pairs("x-attempt", strconv.Itoa(n))); err != nil {
			return nil, err
		}
	}
	if times, _ := strconv.Atoi(first("x-fail-times")); n <= times {
		code, _ := strconv.Atoi(first("x-fail-code"))
		return nil, status.Errorf(codes.Code(code), "attempt %d fails", n)
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, in.GetResponseSize())}}, nil
}

func (s *flakyService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range in.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (s *flakyService) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[id]
}

// grpcRouters is handbook-linkerd's linkerd-grpc.yml without Kubernetes:
// an outgoing and an incoming h2 router with the reference dtab and
// identifier, io.l5d.fs in place of io.l5d.k8s, and io.l5d.port (every
// bound address rewritten to the incoming router's port) in place of the
// io.l5d.k8s.daemonset transformer. The outgoing router retries
// RESOURCE_EXHAUSTED (io.l5d.h2.grpc.retryableStatusCodes).
func grpcRouters(t *testing.T, backendPort int) (outgoing *linnet, outPort int) {
	t.Helper()
	disco := t.TempDir()
	// /svc/grpc.testing.TestService → /grpc/TestService/testing/grpc
	// (domainToPathPfx) → /#/io.l5d.fs/TestService, residual /testing/grpc.
	for _, svc := range []string{"TestService", "UnimplementedService"} {
		if err := os.WriteFile(filepath.Join(disco, svc), fmt.Appendf(nil, "127.0.0.1 %d\n", backendPort), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dt := `
    /srv        => /#/io.l5d.fs;
    /grpc       => /srv;
    /grpc/World => /srv/world-v1;
    /svc        => /$/io.buoyant.http.domainToPathPfx/grpc;`
	admin, inPort := freePort(t), freePort(t)
	outPort = freePort(t)
	outgoing = startRouter(t, fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
namers:
- kind: io.l5d.fs
  rootDir: %s
routers:
- protocol: h2
  label: outgoing
  experimental: true
  dtab: |%s
  identifier:
    kind: io.l5d.header.path
    segments: 1
  interpreter:
    kind: default
    transformers:
    - kind: io.l5d.port
      port: %d
  service:
    responseClassifier:
      kind: io.l5d.h2.grpc.retryableStatusCodes
      retryableStatusCodes: [8, 14]
  servers:
  - port: %d
    ip: 127.0.0.1
- protocol: h2
  label: incoming
  experimental: true
  dtab: |%s
  identifier:
    kind: io.l5d.header.path
    segments: 1
  servers:
  - port: %d
    ip: 127.0.0.1
`, admin, disco, dt, inPort, outPort, dt, inPort), admin)
	return outgoing, outPort
}

func TestGRPCRouterRetries(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &flakyService{attempts: map[string]int{}}
	gs := grpc.NewServer()
	testpb.RegisterTestServiceServer(gs, svc)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)

	outgoing, outPort := grpcRouters(t, ln.Addr().(*net.TCPAddr).Port)
	cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", outPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := testpb.NewTestServiceClient(cc)
	call := func(id string, payload, failTimes int, failCode codes.Code, md ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, append([]string{"x-id", id, "x-payload", strconv.Itoa(payload),
			"x-fail-times", strconv.Itoa(failTimes), "x-fail-code", strconv.Itoa(int(failCode))}, md...)...)
		resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 3000, Payload: &testpb.Payload{Body: make([]byte, payload)}})
		if err == nil && len(resp.GetPayload().GetBody()) != 3000 {
			return fmt.Errorf("response payload %d bytes, want 3000", len(resp.GetPayload().GetBody()))
		}
		return err
	}
	retries := func() float64 {
		return metrics(t, outgoing)["rt/outgoing/service/svc/grpc.testing.TestService/retries/total"]
	}

	if err := call("plain", 1000, 0, 0); err != nil {
		t.Fatalf("call through both routers: %v", err)
	}
	svc.mu.Lock()
	md := svc.lastMD
	svc.mu.Unlock()
	if v := md.Get("l5d-dst-service"); len(v) != 1 || v[0] != "/svc/grpc.testing.TestService" {
		t.Errorf("endpoint saw l5d-dst-service %q", v)
	}
	if v := md.Get("via"); len(v) != 1 || strings.Count(v[0], "linkerd") != 2 {
		t.Errorf("endpoint saw via %q, want two linkerd hops", v)
	}
	if r := retries(); r != 0 {
		t.Fatalf("retries/total = %v before any failure", r)
	}

	// RESOURCE_EXHAUSTED is retryable here: two failures, then success;
	// the 1000-byte request is replayed whole on each retry.
	if err := call("retry", 1000, 2, codes.ResourceExhausted); err != nil {
		t.Errorf("retryable failures: %v, want success after retries", err)
	}
	if n := svc.count("retry"); n != 3 {
		t.Errorf("endpoint saw %d attempts, want 3", n)
	}
	if r := retries(); r != 2 {
		t.Errorf("retries/total = %v, want 2", r)
	}

	// The same when the endpoint sent its headers first and the status
	// in trailers: the router holds the response (retryBufferSize.
	// responseBytes, classificationTimeoutMs) until the trailers say
	// whether to retry.
	if err := call("trailers", 1000, 1, codes.ResourceExhausted, "x-send-header", "1"); err != nil {
		t.Errorf("retryable failure in trailers: %v, want success after a retry", err)
	}
	if n := svc.count("trailers"); n != 2 {
		t.Errorf("failure in trailers: endpoint saw %d attempts, want 2", n)
	}
	if r := retries(); r != 3 {
		t.Errorf("retries/total = %v, want 3", r)
	}

	// FAILED_PRECONDITION is not in retryableStatusCodes.
	if err := call("final", 10, 1, codes.FailedPrecondition); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("non-retryable failure: %v, want FailedPrecondition", err)
	}
	if n := svc.count("final"); n != 1 {
		t.Errorf("non-retryable: endpoint saw %d attempts, want 1", n)
	}

	// A request larger than retryBufferSize.requestBytes (16383) cannot be
	// replayed: its failure is returned as is.
	if err := call("big", 20000, 1, codes.ResourceExhausted); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("unreplayable request: %v, want ResourceExhausted", err)
	}
	if n := svc.count("big"); n != 1 {
		t.Errorf("unreplayable request: endpoint saw %d attempts, want 1", n)
	}
	if r := retries(); r != 3 {
		t.Errorf("retries/total = %v after non-retryable failures, want still 3", r)
	}

	// Server streaming passes through both routers.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{
		ResponseParameters: []*testpb.ResponseParameters{{Size: 10}, {Size: 70000}, {Size: 30}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{10, 70000, 30} {
		m, err := stream.Recv()
		if err != nil || len(m.GetPayload().GetBody()) != want {
			t.Fatalf("stream message %d: %v", i, err)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
}

// interopService is the grpc.testing.TestService behaviour that grpc-go's
// interop client checks (gRPC's interop test descriptions): zero-filled
// payloads of the requested sizes, response_status echoed as the call's
// status, and the x-grpc-test-echo-* metadata echoed back.
type interopService struct {
	testpb.UnimplementedTestServiceServer
}

func echoMetadata(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-grpc-test-echo-initial"); len(v) > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-grpc-test-echo-initial", v[0]))
	}
	if v := md.Get("x-grpc-test-echo-trailing-bin"); len(v) > 0 {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-grpc-test-echo-trailing-bin", v[0]))
	}
}

func echoStatus(s *testpb.EchoStatus) error {
	if s == nil || s.GetCode() == 0 {
		return nil
	}
	return status.Error(codes.Code(s.GetCode()), s.GetMessage())
}

func (interopService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func (interopService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	echoMetadata(ctx)
	if err := echoStatus(in.GetResponseStatus()); err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, in.GetResponseSize())}}, nil
}

func (interopService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range in.GetResponseParameters() {
		if d := p.GetIntervalUs(); d > 0 {
			time.Sleep(time.Duration(d) * time.Microsecond)
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (interopService) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	total := 0
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(in.GetPayload().GetBody())
	}
}

func (s interopService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	echoMetadata(stream.Context())
	for {
		in, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(in.GetResponseStatus()); err != nil {
			return err
		}
		if err := s.StreamingOutputCall(&testpb.StreamingOutputCallRequest{ResponseParameters: in.GetResponseParameters()}, stream); err != nil {
			return err
		}
	}
}

// TestGRPCInteropThroughRouters runs grpc-go's interop client (an
// independent implementation of gRPC's conformance checks; installed by
// scripts/test-deps.sh) through the linkerd-grpc.yml router pair.
func TestGRPCInteropThroughRouters(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("grpc-interop-client")
	if err != nil {
		out, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(out)), "bin", "grpc-interop-client")
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("grpc-interop-client not found in PATH or GOPATH/bin: run scripts/test-deps.sh")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	testpb.RegisterTestServiceServer(gs, interopService{})
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	_, outPort := grpcRouters(t, ln.Addr().(*net.TCPAddr).Port)

	cases := []string{
		"empty_unary", "large_unary", "client_streaming", "server_streaming",
		"ping_pong", "empty_stream", "timeout_on_sleeping_server",
		"cancel_after_begin", "cancel_after_first_response",
		"status_code_and_message", "special_status_message", "custom_metadata",
		"unimplemented_method", "unimplemented_service",
	}
	for _, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, "-server_host", "127.0.0.1", "-server_port", strconv.Itoa(outPort), "-test_case", tc).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("interop case %s through the routers: %v\n%s", tc, err, out)
		}
	}
}
