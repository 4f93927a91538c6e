package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
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
	if err := os.WriteFile(filepath.Join(disco, "TestService"), fmt.Appendf(nil, "127.0.0.1 %d\n", backendPort), 0o644); err != nil {
		t.Fatal(err)
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
	call := func(id string, payload, failTimes int, failCode codes.Code) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "x-id", id, "x-payload", strconv.Itoa(payload),
			"x-fail-times", strconv.Itoa(failTimes), "x-fail-code", strconv.Itoa(int(failCode)))
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
	if r := retries(); r != 2 {
		t.Errorf("retries/total = %v after non-retryable failures, want still 2", r)
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
