package h2

import (
	"io"
	"net/http"
	"testing"

	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// BenchmarkH2RoundTrip is one loopback request through the proxy: an h2c
// client, the h2 server and router, the pooled h2c transport, an h2c
// endpoint answering 13 bytes.
func BenchmarkH2RoundTrip(b *testing.B) {
	backend := startH2CBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello, world\n")
	}))
	b.Run("direct", func(b *testing.B) { benchGet(b, "http://"+backend+"/") })
	p := newTestProxy(b, map[string]string{"bench": backend}, proxyOpts{ident: staticName("bench")})
	b.Run("proxied", func(b *testing.B) { benchGet(b, "http://"+p.Addr+"/") })
}

// benchGet measures GETs of url over h2c; "direct" is the baseline the
// proxy's cost is read against.
func benchGet(b *testing.B, url string) {
	c := h2cClient()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkGRPCUnary is one small unary call from a real gRPC client to a
// real gRPC server, directly and through the proxy.
func BenchmarkGRPCUnary(b *testing.B) {
	svc := newTestService()
	backend := startGRPCBackend(b, svc)
	b.Run("direct", func(b *testing.B) { benchUnary(b, backend) })
	p := newTestProxy(b, map[string]string{testServiceName: backend}, proxyOpts{})
	b.Run("proxied", func(b *testing.B) { benchUnary(b, p.Addr) })
}

func benchUnary(b *testing.B, addr string) {
	c := grpcClient(b, addr, nil)
	req := &testpb.SimpleRequest{ResponseSize: 64, Payload: payload(64)}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.UnaryCall(b.Context(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
