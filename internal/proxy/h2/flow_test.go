package h2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// TestSlowReaderBackpressuresEndpoint: a caller that stops reading must
// stop the endpoint, through HTTP/2 flow control on both hops, instead of
// the proxy buffering the stream in memory.
func TestSlowReaderBackpressuresEndpoint(t *testing.T) {
	var written atomic.Int64
	done := make(chan struct{})
	backend := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		chunk := make([]byte, 64<<10)
		w.WriteHeader(http.StatusOK)
		for written.Load() < 256<<20 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			written.Add(int64(len(chunk)))
		}
	}))
	p := newTestProxy(t, map[string]string{"big": backend}, proxyOpts{ident: staticName("big")})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p.Addr+"/", nil)
	resp, err := h2cClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Read a little, then stop and let the endpoint run into the windows.
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	var last int64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		n := written.Load()
		if n == last {
			break // stalled: the windows are full
		}
		last = n
	}
	// Two hops of windows (4 MiB x/net transport stream window, 4 MiB
	// for the caller, plus 1 MiB read and the server's buffers) bound
	// what can be in flight; 256 MiB would mean the proxy buffers.
	if n := written.Load(); n > 32<<20 {
		t.Fatalf("the endpoint wrote %d MiB to a caller that read 1 MiB", n>>20)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the endpoint's stream was not reset after the caller went away")
	}
}

// TestGRPCCancelPropagates: a caller cancelling a server stream cancels
// the endpoint's handler.
func TestGRPCCancelPropagates(t *testing.T) {
	svc, c, _ := grpcSetup(t)
	svc.step = make(chan struct{}) // the endpoint waits after the first message
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{
		ResponseParameters: []*testpb.ResponseParameters{{Size: 1}, {Size: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("after cancel: %v, want Canceled", err)
	}
	// The endpoint's handler, waiting for a step that never comes, must
	// see its context cancelled.
	select {
	case err := <-svc.outDone:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("endpoint stream ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the endpoint's stream is still open after the caller cancelled")
	}
}

// TestGRPCConcurrentStreams multiplexes many calls of every kind over the
// proxy's single connections at once.
func TestGRPCConcurrentStreams(t *testing.T) {
	_, c, _ := grpcSetup(t)
	ctx := ctxTimeout(t, 20*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: int32(1000 + i), Payload: payload(int32(i))})
				if err == nil && len(resp.GetPayload().GetBody()) != 1000+i {
					err = status.Errorf(codes.DataLoss, "call %d: %d bytes", i, len(resp.GetPayload().GetBody()))
				}
				errs <- err
				return
			}
			stream, err := c.FullDuplexCall(ctx)
			if err != nil {
				errs <- err
				return
			}
			for j := range 5 {
				if err := stream.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: int32(i*10 + j)}}}); err != nil {
					errs <- err
					return
				}
				m, err := stream.Recv()
				if err != nil {
					errs <- err
					return
				}
				if len(m.GetPayload().GetBody()) != i*10+j {
					errs <- status.Errorf(codes.DataLoss, "stream %d message %d mixed up", i, j)
					return
				}
			}
			errs <- stream.CloseSend()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
