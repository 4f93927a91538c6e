package middleware

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestReplayableBodilessAllocs pins the retry filter's per-request cost
// for a request without a body: its first attempt is the request itself,
// with nothing allocated (the closures it was built from allocated on
// every request).
func TestReplayableBodilessAllocs(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	n := testing.AllocsPerRun(200, func() {
		r, ok, err := replayable(req, 0)
		if !ok || err != nil || r.next() != req {
			t.Fatal("a bodiless request is not replayed as itself first")
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per bodiless request, want 0", n)
	}
}

// TestReplayableAttempts checks the requests of successive attempts: the
// original first, then copies; a buffered body is replayed whole each
// time, and a body too large to buffer is not replayable.
func TestReplayableAttempts(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	r, _, _ := replayable(req, 0)
	if first, second := r.next(), r.next(); first != req || second == req || second.URL != req.URL {
		t.Errorf("attempts of a bodiless request: %p then %p, want the original %p then a copy", first, second, req)
	}

	req, _ = http.NewRequest("POST", "http://x/", io.NopCloser(strings.NewReader("hello")))
	req.ContentLength, req.GetBody = 5, nil
	r, ok, err := replayable(req, 0)
	if !ok || err != nil {
		t.Fatalf("replayable(5-byte body) = %v, %v", ok, err)
	}
	for i := 0; i < 2; i++ {
		a := r.next()
		if a == req {
			t.Fatal("a buffered body's attempt reused the original, whose body was consumed")
		}
		if b, _ := io.ReadAll(a.Body); string(b) != "hello" {
			t.Errorf("attempt %d body %q, want hello", i, b)
		}
	}

	req, _ = http.NewRequest("POST", "http://x/", io.NopCloser(strings.NewReader("hello")))
	req.ContentLength, req.GetBody = 5, nil
	if _, ok, _ := replayable(req, 4); ok {
		t.Error("a body over the retry buffer was replayable")
	}
}
