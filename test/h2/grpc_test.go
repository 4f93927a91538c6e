package h2

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// service is a small grpc.testing.TestService: UnaryCall answers
// ResponseSize bytes or ResponseStatus, echoes x-echo as a header and a
// trailer, and reports the metadata it received; StreamingOutputCall
// sends one message per ResponseParameters entry.
type service struct {
	testpb.UnimplementedTestServiceServer
	seen chan metadata.MD
}

func (s *service) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	select {
	case s.seen <- md:
	default:
	}
	if v := md.Get("x-echo"); len(v) > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-echo", v[0]))
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", v[0]))
	}
	if st := in.GetResponseStatus(); st != nil && st.Code != 0 {
		return nil, status.Error(codes.Code(st.Code), st.Message)
	}
	if v := md.Get("x-sleep"); len(v) > 0 {
		d, _ := time.ParseDuration(v[0])
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, in.GetResponseSize())}}, nil
}

func (s *service) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range in.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func startBackend(t *testing.T) (*service, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &service{seen: make(chan metadata.MD, 16)}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, svc)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return svc, ln.Addr().(*net.TCPAddr).Port
}

// TestGRPCThroughTwoRoutersOverTLS is Linkerd's linker-to-linker setup
// with the real binary: a gRPC client → outgoing h2 router (h2c) → TLS
// with a per-client commonName ({service} captured by an io.l5d.static
// client prefix) and a test CA → incoming h2 router (server TLS) → h2c →
// gRPC server, routed by the gRPC service name (io.l5d.header.path, 1
// segment) through an io.l5d.fs namer.
func TestGRPCThroughTwoRoutersOverTLS(t *testing.T) {
	svc, backendPort := startBackend(t)
	ca := tlstest.NewCA(t, "mesh")
	in := ca.Issue("incoming", "grpc.testing.linkerd.io")

	inAdmin, inPort := freePort(t), freePort(t)
	startRouter(t, fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
routers:
- protocol: h2
  label: incoming
  identifier:
    kind: io.l5d.header.path
    segments: 1
  dtab: /svc/grpc.testing.TestService => /$/inet/127.0.0.1/%d;
  servers:
  - ip: 127.0.0.1
    port: %d
    tls:
      certPath: %s
      keyPath: %s
`, inAdmin, backendPort, inPort, in.CertPath, in.KeyPath), inAdmin)

	// The outgoing router finds the incoming one through io.l5d.fs, so
	// that the bound name (/#/io.l5d.fs/grpc.testing) carries the service.
	disco := t.TempDir()
	if err := os.WriteFile(filepath.Join(disco, "grpc.testing"), fmt.Appendf(nil, "127.0.0.1 %d\n", inPort), 0o644); err != nil {
		t.Fatal(err)
	}
	outAdmin, outPort := freePort(t), freePort(t)
	startRouter(t, fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
namers:
- kind: io.l5d.fs
  rootDir: %s
routers:
- protocol: h2
  label: outgoing
  identifier:
    kind: io.l5d.header.path
    segments: 1
  dtab: /svc/grpc.testing.TestService => /#/io.l5d.fs/grpc.testing;
  client:
    kind: io.l5d.static
    configs:
    - prefix: /#/io.l5d.fs/{service}
      tls:
        commonName: "{service}.linkerd.io"
        trustCerts:
        - %s
  servers:
  - ip: 127.0.0.1
    port: %d
`, outAdmin, disco, ca.CertPath, outPort), outAdmin)

	cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", outPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := testpb.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-echo", "e2e"), 10*time.Second)
	defer cancel()

	var hdr, trl metadata.MD
	resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 1 << 20}, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		t.Fatalf("unary call through both routers: %v", err)
	}
	if n := len(resp.GetPayload().GetBody()); n != 1<<20 {
		t.Errorf("payload %d bytes, want 1MiB", n)
	}
	if hdr.Get("x-echo")[0] != "e2e" || len(trl.Get("x-echo-trailer")) != 1 {
		t.Errorf("header %v trailer %v, want the endpoint's x-echo and x-echo-trailer", hdr, trl)
	}
	md := <-svc.seen
	if v := md.Get("l5d-dst-service"); len(v) != 1 || v[0] != "/svc/grpc.testing.TestService" {
		t.Errorf("endpoint saw l5d-dst-service %q", v)
	}
	if v := md.Get("via"); len(v) != 1 || strings.Count(v[0], "linkerd") != 2 {
		t.Errorf("endpoint saw via %q, want two linkerd hops", v)
	}

	stream, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{
		ResponseParameters: []*testpb.ResponseParameters{{Size: 10}, {Size: 20000}, {Size: 30}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{10, 20000, 30} {
		m, err := stream.Recv()
		if err != nil || len(m.GetPayload().GetBody()) != want {
			t.Fatalf("stream message %d: %v", i, err)
		}
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}

	_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}})
	if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "no such thing" {
		t.Errorf("endpoint status across both routers = %v", err)
	}

	dctx, dcancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-sleep", "10s"), 300*time.Millisecond)
	defer dcancel()
	start := time.Now()
	_, err = c.UnaryCall(dctx, &testpb.SimpleRequest{})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 3*time.Second {
		t.Errorf("deadline: %v after %v, want DeadlineExceeded after ~300ms", err, time.Since(start))
	}

	// A name nothing routes: the routers answer as gRPC, with l5d-err.
	trl = nil
	err = cc.Invoke(ctx, "/no.such.Service/Call", &testpb.Empty{}, &testpb.Empty{}, grpc.Trailer(&trl))
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable {
		t.Errorf("unroutable service: %v, want Unavailable", err)
	}
	if v := trl.Get("l5d-err"); len(v) != 1 {
		t.Errorf("unroutable service: l5d-err %q, want one", v)
	} else if msg, _ := url.QueryUnescape(v[0]); !strings.Contains(msg, "/svc/no.such.Service") {
		t.Errorf("unroutable service: l5d-err %q does not name the service", msg)
	}
}
