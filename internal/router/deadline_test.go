package router

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/naming"
)

func TestCallerDeadline(t *testing.T) {
	var hits atomic.Int64
	seen := make(chan string, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		seen <- r.Header.Get("l5d-ctx-deadline")
	}))
	defer be.Close()
	f := newFixture(t, Params{}, map[string][]naming.Address{"a": {address(t, be.URL)}})
	send := func(d middleware.Deadline) (*http.Response, error) {
		req, _ := http.NewRequest("GET", "http://placeholder/", nil)
		req.Header.Set("l5d-ctx-deadline", d.String())
		return f.r.RoundTrip(req, Dst{Path: dtab.Path{"svc", "a"}})
	}
	now := time.Now()

	past := middleware.Deadline{Start: now.Add(-2 * time.Second), Deadline: now.Add(-time.Second)}
	_, err := send(past)
	var te *middleware.TimeoutError
	if !errors.As(err, &te) || te.Kind != middleware.TimeoutDeadline {
		t.Errorf("past deadline: err = %v; want a l5d-ctx-deadline TimeoutError", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("past deadline reached the endpoint %d times; want 0", n)
	}

	// A deadline still ahead is advisory: the request goes through and
	// the endpoint sees the deadline unchanged.
	future := middleware.Deadline{Start: now, Deadline: now.Add(time.Minute)}
	resp, err := send(future)
	if err != nil {
		t.Fatalf("future deadline: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := <-seen; got != future.String() {
		t.Errorf("endpoint saw l5d-ctx-deadline %q; want %q", got, future.String())
	}

	// A request without one is untouched.
	resp, err = get(t, f.r, "a", nil)
	if err != nil {
		t.Fatalf("no deadline: %v", err)
	}
	resp.Body.Close()
	if got := <-seen; got != "" {
		t.Errorf("endpoint saw l5d-ctx-deadline %q on a request without one", got)
	}
}
