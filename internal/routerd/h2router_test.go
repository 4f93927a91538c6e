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
					t.Fatal(err)
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
		func(r *http.Request) { first = r; readAll(t, body)(r) },
		func(r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if !errors.Is(err, errReplayOverflow) || len(b) > 50 {
				t.Errorf("replay after overflow: %d bytes, %v; want at most the 50 kept bytes, then errReplayOverflow", len(b), err)
			}
		},
	)
	if c := (replayAwareClassifier{failAll{}}).Classify(first, nil, errors.New("x")); c.Retryable {
		t.Error("an overflowed request is still retryable")
	}
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
