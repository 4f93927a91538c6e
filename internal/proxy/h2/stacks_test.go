package h2

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
)

func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	if f := bytes.Fields(buf); len(f) > 1 {
		return string(f[1])
	}
	return ""
}

// Requests handed to warmStacks run on a reused goroutine, not the
// caller's; a handler's panic comes out of ServeHTTP on the caller's
// goroutine, where net/http recovers it; stop ends the idle workers
// (TestMain checks for leaks).
func TestWarmStacks(t *testing.T) {
	var ids []string
	p := newWarmStacks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
		ids = append(ids, goroutineID())
		w.WriteHeader(204)
	}))
	defer p.stop()
	caller := goroutineID()
	for range 50 {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 204 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	distinct := map[string]bool{}
	for _, id := range ids {
		if id == caller {
			t.Fatal("the handler ran on the caller's goroutine")
		}
		distinct[id] = true
	}
	// Without reuse there would be 50; a worker that has not reached its
	// wait when the next request comes makes another one.
	if len(distinct) > 25 {
		t.Errorf("50 sequential requests ran on %d goroutines; want workers reused", len(distinct))
	}
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler", v)
			}
		}()
		p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/panic", nil))
		t.Error("a handler's panic did not reach the caller")
	}()
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 204 {
		t.Errorf("after a panic: status %d", rec.Code)
	}
}
