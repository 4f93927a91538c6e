package routerd

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/middleware"
)

// attempts runs a request through replayBody and calls each of fns with
// the request a successive attempt would send (the first, then what
// GetBody gives, as the retry filter does).
func replayAttempts(t *testing.T, limit int, body io.ReadCloser, fns ...func(*http.Request)) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://x/", nil)
	req.Body, req.ContentLength = body, -1
	rt := replayBody(limit)(middleware.RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
		for i, fn := range fns {
			if i > 0 {
				b, err := r.GetBody()
				if err != nil {
					t.Error(err)
					return nil, err
				}
				r2 := *r
				r2.Body = b
				fn(&r2)
				continue
			}
			fn(r)
		}
		return nil, errors.New("done")
	}))
	_, _ = rt.RoundTrip(req)
}

func readAll(t *testing.T, want string) func(*http.Request) {
	return func(r *http.Request) {
		t.Helper()
		b, err := io.ReadAll(r.Body)
		if err != nil || string(b) != want {
			t.Errorf("attempt read %q, %v; want %q", b, err, want)
		}
	}
}

func TestReplayBodyWithinLimit(t *testing.T) {
	body := strings.Repeat("abc", 100)
	var first *http.Request
	replayAttempts(t, 1000, io.NopCloser(strings.NewReader(body)),
		func(r *http.Request) {
			first = r
			// The first attempt reads part of the body, then gives up.
			buf := make([]byte, 10)
			if n, err := io.ReadFull(r.Body, buf); n != 10 || err != nil {
				t.Fatalf("first read: %d %v", n, err)
			}
			r.Body.Close()
			if _, err := r.Body.Read(buf); err != http.ErrBodyReadAfterClose {
				t.Errorf("read after close: %v", err)
			}
		},
		readAll(t, body), // replays the 10 bytes, then continues
		readAll(t, body), // all from the buffer
	)
	if c := (replayAwareClassifier{failAll{}}).Classify(first, nil, errors.New("x")); !c.Retryable {
		t.Error("a replayable request was made non-retryable")
	}
}

func TestReplayBodyOverflow(t *testing.T) {
	body := strings.Repeat("z", 100)
	var first *http.Request
	replayAttempts(t, 50, io.NopCloser(strings.NewReader(body)),
		func(r *http.Request) {
			first = r
			readAll(t, body)(r)
			if _, err := r.GetBody(); !errors.Is(err, errReplayOverflow) {
				t.Errorf("GetBody after overflow: %v, want errReplayOverflow", err)
			}
		},
	)
	if c := (replayAwareClassifier{failAll{}}).Classify(first, nil, errors.New("x")); c.Retryable {
		t.Error("an overflowed request is still retryable")
	}
}

// An attempt that lags behind the one that overflowed the buffer cannot
// continue: the bytes it needs were not kept.
func TestReplayBodyLaggingAttempt(t *testing.T) {
	body := strings.Repeat("y", 100)
	var lagging io.Reader
	replayAttempts(t, 60, io.NopCloser(strings.NewReader(body)),
		func(r *http.Request) {
			lagging = r.Body
			buf := make([]byte, 40)
			if n, err := io.ReadFull(r.Body, buf); n != 40 || err != nil {
				t.Fatalf("first read: %d %v", n, err)
			}
		},
		func(r *http.Request) {
			// Replays 40 kept bytes, then reads on: 40+40 > 60 overflows.
			buf := make([]byte, 80)
			if n, err := io.ReadFull(r.Body, buf); n != 80 || err != nil {
				t.Fatalf("second attempt: %d %v", n, err)
			}
			if n, err := lagging.Read(buf); !errors.Is(err, errReplayOverflow) {
				t.Errorf("lagging attempt read %d, %v; want errReplayOverflow", n, err)
			}
		},
	)
}

// A request body still streaming (a gRPC client stream) is forwarded as
// it arrives, not read to its end first; closing an attempt whose read is
// blocked does not block.
func TestReplayBodyStreams(t *testing.T) {
	pr, pw := io.Pipe()
	got := make(chan string, 1)
	go replayAttempts(t, 1<<10, pr, func(r *http.Request) {
		buf := make([]byte, 5)
		n, _ := r.Body.Read(buf)
		got <- string(buf[:n])
		closed := make(chan struct{})
		go func() {
			// Read blocks: the caller has not sent more.
			_, _ = r.Body.Read(buf)
		}()
		go func() { r.Body.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Error("Close blocked behind a pending Read")
		}
	})
	if _, err := pw.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "hello" {
			t.Errorf("streamed %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first bytes were not forwarded before the body ended")
	}
	pw.Close()
}

type failAll struct{}

func (failAll) Classify(*http.Request, *http.Response, error) middleware.Class {
	return middleware.Class{Retryable: true}
}

// trailerBody simulates the HTTP/2 transport's response body: the
// trailers are written into the response when EOF is read.
type trailerBody struct {
	r       io.Reader
	resp    *http.Response
	trailer http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.resp.Trailer = b.trailer
	}
	return n, err
}

func (b *trailerBody) Close() error {
	if c, ok := b.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func grpcResponse(body io.Reader, status string) *http.Response {
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/grpc"}}}
	resp.Body = &trailerBody{r: body, resp: resp, trailer: http.Header{"Grpc-Status": {status}}}
	return resp
}

func holdOne(t *testing.T, resp *http.Response, timeout time.Duration) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://x/", nil)
	out, err := holdForTrailers(1<<10, timeout)(middleware.RoundTripperFunc(func(*http.Request) (*http.Response, error) {
		return resp, nil
	})).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHoldForTrailersSeesStatus(t *testing.T) {
	out := holdOne(t, grpcResponse(strings.NewReader("message"), "8"), 5*time.Second)
	if got := out.Trailer.Get("Grpc-Status"); got != "8" {
		t.Fatalf("trailers when returned: %v, want grpc-status 8", out.Trailer)
	}
	if b, err := io.ReadAll(out.Body); string(b) != "message" || err != nil {
		t.Errorf("body %q %v", b, err)
	}
}

func TestHoldForTrailersTimesOutAndStreams(t *testing.T) {
	pr, pw := io.Pipe()
	start := time.Now()
	out := holdOne(t, grpcResponse(pr, "0"), 50*time.Millisecond)
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("returned after %v, want after the 50ms classification timeout", d)
	}
	if out.Trailer != nil {
		t.Errorf("trailers before the end of the stream: %v", out.Trailer)
	}
	// Each chunk is readable as soon as it arrives.
	for _, chunk := range []string{"one", "two"} {
		go pw.Write([]byte(chunk))
		buf := make([]byte, 10)
		n, err := out.Body.Read(buf)
		if err != nil || string(buf[:n]) != chunk {
			t.Fatalf("read %q %v, want %q", buf[:n], err, chunk)
		}
	}
	pw.Close()
	if b, err := io.ReadAll(out.Body); len(b) != 0 || err != nil {
		t.Errorf("rest %q %v", b, err)
	}
	if got := out.Trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("trailers at EOF: %v, want grpc-status 0", out.Trailer)
	}
}

func TestHoldForTrailersBeyondLimit(t *testing.T) {
	body := strings.Repeat("x", 5000) // more than the 1KiB limit
	out := holdOne(t, grpcResponse(strings.NewReader(body), "14"), 5*time.Second)
	if out.Trailer != nil {
		t.Errorf("a response larger than the buffer was held to its end: %v", out.Trailer)
	}
	if b, err := io.ReadAll(out.Body); string(b) != body || err != nil {
		t.Errorf("body %d bytes %v, want %d", len(b), err, len(body))
	}
	if got := out.Trailer.Get("Grpc-Status"); got != "14" {
		t.Errorf("trailers at EOF: %v", out.Trailer)
	}
}
