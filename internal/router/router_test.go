package router

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

func TestStackOrder(t *testing.T) {
	if got, want := roles(pathStack), []string{"ServiceStats", "Classify", "Deadline", "TotalTimeout", "Retries", "DstService"}; !slices.Equal(got, want) {
		t.Errorf("path stack = %v; want %v", got, want)
	}
	if got, want := roles(boundStack), []string{"ClientStats", "Requeue", "AttemptTimeout", "DstClient", "PropagateDeadline"}; !slices.Equal(got, want) {
		t.Errorf("bound stack = %v; want %v", got, want)
	}
}

type fixture struct {
	namer *naming.StaticNamer
	r     *Router
	reg   *telemetry.Registry
}

func address(t testing.TB, raw string) naming.Address {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	h, p, _ := net.SplitHostPort(u.Host)
	port, _ := strconv.Atoi(p)
	return naming.Address{Host: h, Port: port, Weight: 1}
}

func newFixture(t testing.TB, p Params, names map[string][]naming.Address) *fixture {
	namer := naming.NewStaticNamer(dtab.Path{"#", "t"}, names)
	reg := telemetry.NewRegistry()
	p.Label = "t"
	p.Dtab = dtab.MustParse("/svc => /#/t")
	p.Interpreter = naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "t"}, Namer: namer}})
	p.Scope = telemetry.RouterScope(reg.Scope(), "t")
	p.NewTransport = func(string) Transport { return &http.Transport{} }
	r := New(p)
	t.Cleanup(func() { r.Close() })
	return &fixture{namer: namer, r: r, reg: reg}
}

func get(t testing.TB, r *Router, name string, local dtab.Dtab) (*http.Response, error) {
	req, _ := http.NewRequest("GET", "http://placeholder/", nil)
	req.Host = name
	return r.RoundTrip(req, Dst{Path: dtab.Path{"svc", name}, Local: local})
}

func TestRouteAndHeaders(t *testing.T) {
	seen := make(chan http.Header, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "ok")
	}))
	defer be.Close()
	f := newFixture(t, Params{}, map[string][]naming.Address{"a": {address(t, be.URL)}})
	resp, err := get(t, f.r, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	h := <-seen
	if string(b) != "ok" || h.Get("l5d-dst-service") != "/svc/a" || h.Get("l5d-dst-client") != "/#/t/a" {
		t.Errorf("body %q headers %v; want ok with l5d-dst-service /svc/a, l5d-dst-client /#/t/a", b, h)
	}
}

func TestNoRoute(t *testing.T) {
	f := newFixture(t, Params{}, map[string][]naming.Address{"empty": nil})
	_, err := get(t, f.r, "missing", nil)
	var nr *NoRouteError
	if !errors.As(err, &nr) || nr.Bound != nil || !nr.Name.Equal(dtab.Path{"svc", "missing"}) {
		t.Errorf("err = %v; want a NoRouteError for /svc/missing", err)
	}
	_, err = get(t, f.r, "empty", dtab.MustParse("/x=>/y"))
	if !errors.As(err, &nr) || nr.Bound == nil || nr.Reason != "no endpoints available" || len(nr.Local) != 1 {
		t.Errorf("err = %#v; want a NoRouteError with no endpoints, the bound name and the local dtab", err)
	}
}

func TestBindingTimeout(t *testing.T) {
	f := newFixture(t, Params{BindingTimeout: 50 * time.Millisecond}, map[string][]naming.Address{})
	f.namer.SetPending("slow")
	start := time.Now()
	_, err := get(t, f.r, "slow", nil)
	var bt *BindingTimeoutError
	if !errors.As(err, &bt) {
		t.Fatalf("err = %v; want BindingTimeoutError", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Errorf("failed after %v; want about the 50ms binding timeout", d)
	}
}

func TestIdleEviction(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer be.Close()
	f := newFixture(t, Params{IdleTTL: 30 * time.Millisecond}, map[string][]naming.Address{"a": {address(t, be.URL)}})
	resp, err := get(t, f.r, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if f.namer.Subscribers() == 0 || f.r.paths.len() != 1 || f.r.bounds.len() != 1 || f.r.clients.len() != 1 {
		t.Fatalf("after one request: subscribers %d, tiers %d/%d/%d; want watches and one entry per tier",
			f.namer.Subscribers(), f.r.paths.len(), f.r.bounds.len(), f.r.clients.len())
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.r.paths.len()+f.r.bounds.len()+f.r.clients.len() > 0 || f.namer.Subscribers() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle entries not evicted: tiers %d/%d/%d, namer subscribers %d",
				f.r.paths.len(), f.r.bounds.len(), f.r.clients.len(), f.namer.Subscribers())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A new request after eviction routes again.
	resp, err = get(t, f.r, "a", nil)
	if err != nil {
		t.Fatalf("after eviction: %v", err)
	}
	resp.Body.Close()
}

func TestTotalTimeout(t *testing.T) {
	block := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer be.Close()
	defer close(block)
	f := newFixture(t, Params{Service: func(dtab.Path) ServicePolicy {
		return ServicePolicy{TotalTimeout: 50 * time.Millisecond}
	}}, map[string][]naming.Address{"a": {address(t, be.URL)}})
	_, err := get(t, f.r, "a", nil)
	var te *middleware.TimeoutError
	if !errors.As(err, &te) || te.Kind != middleware.TimeoutTotal {
		t.Errorf("err = %v; want a totalTimeoutMs TimeoutError", err)
	}
}

// The outbound l5d-ctx-deadline is the caller's deadline combined with
// totalTimeoutMs; with neither, none is sent.
func TestDeadlinePropagation(t *testing.T) {
	seen := make(chan string, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get(hdrCtxDeadline)
	}))
	defer be.Close()
	names := map[string][]naming.Address{"a": {address(t, be.URL)}}
	timed := newFixture(t, Params{Service: func(dtab.Path) ServicePolicy {
		return ServicePolicy{TotalTimeout: 2 * time.Second}
	}}, names)
	plain := newFixture(t, Params{}, names)
	send := func(f *fixture, callerDeadline string) string {
		req, _ := http.NewRequest("GET", "http://placeholder/", nil)
		req.Host = "a"
		if callerDeadline != "" {
			req.Header.Set(hdrCtxDeadline, callerDeadline)
		}
		resp, err := f.r.RoundTrip(req, Dst{Path: dtab.Path{"svc", "a"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return <-seen
	}
	now := time.Now()
	enc := func(start, end time.Time) string {
		return middleware.Deadline{Start: start, Deadline: end}.String()
	}
	// The total timeout alone: a deadline about 2s away.
	d, err := middleware.ParseDeadline(send(timed, ""))
	if left := time.Until(d.Deadline); err != nil || left <= time.Second || left > 2*time.Second {
		t.Errorf("total timeout alone: deadline %v from now (%v), want within 2s", left, err)
	}
	// A caller's looser deadline is tightened to the total timeout, its start kept.
	d, _ = middleware.ParseDeadline(send(timed, enc(now.Add(-time.Second), now.Add(time.Hour))))
	if left := time.Until(d.Deadline); left > 2*time.Second || !d.Start.Equal(time.Unix(0, now.Add(-time.Second).UnixNano())) {
		t.Errorf("looser caller deadline: got %v (%v left)", d, left)
	}
	// A stricter one stays.
	strict := enc(now, now.Add(500*time.Millisecond))
	if got := send(timed, strict); got != strict {
		t.Errorf("stricter caller deadline: backend saw %q, want %q", got, strict)
	}
	// No timeout: the caller's passes as it is; none, none.
	if got := send(plain, strict); got != strict {
		t.Errorf("no timeout: backend saw %q, want %q", got, strict)
	}
	if got := send(plain, ""); got != "" {
		t.Errorf("no timeout, no caller deadline: backend saw %q", got)
	}
}
