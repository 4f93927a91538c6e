package middleware

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/middleware/backoff"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

func transport(t *testing.T) *http.Transport {
	tr := &http.Transport{DialContext: Dialer(time.Second, nil), MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func get(t *testing.T, rt http.RoundTripper, ctx context.Context, method, url string, body io.Reader) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return rt.RoundTrip(req)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

func TestChainOrder(t *testing.T) {
	var order []string
	mk := func(name string) Middleware {
		return func(next http.RoundTripper) http.RoundTripper {
			return RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
				order = append(order, name)
				return next.RoundTrip(r)
			})
		}
	}
	rt := Chain(mk("a"), nil, mk("b"), mk("c"))(RoundTripperFunc(func(*http.Request) (*http.Response, error) {
		order = append(order, "end")
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	}))
	if _, err := get(t, rt, context.Background(), "GET", "http://x/", nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "a,b,c,end" {
		t.Fatalf("order = %s, want a,b,c,end", got)
	}
}

func TestClassifiers(t *testing.T) {
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code, Header: http.Header{}} }
	boom := errors.New("connection reset")
	type outcome struct {
		method string
		resp   *http.Response
		err    error
	}
	cases := []struct {
		kind string
		in   outcome
		want Class
	}{
		{"", outcome{"GET", resp(500), nil}, Class{}},
		{ClassifierNonRetryable5XX, outcome{"GET", resp(200), nil}, Class{Success: true}},
		{ClassifierNonRetryable5XX, outcome{"GET", resp(404), nil}, Class{Success: true}},
		{ClassifierNonRetryable5XX, outcome{"GET", nil, boom}, Class{}},
		{ClassifierRetryableRead5XX, outcome{"GET", resp(503), nil}, Class{Retryable: true}},
		{ClassifierRetryableRead5XX, outcome{"HEAD", nil, boom}, Class{Retryable: true}},
		{ClassifierRetryableRead5XX, outcome{"PUT", resp(503), nil}, Class{}},
		{ClassifierRetryableRead5XX, outcome{"POST", resp(500), nil}, Class{}},
		{ClassifierRetryableIdempotent5XX, outcome{"PUT", resp(500), nil}, Class{Retryable: true}},
		{ClassifierRetryableIdempotent5XX, outcome{"DELETE", resp(500), nil}, Class{Retryable: true}},
		{ClassifierRetryableIdempotent5XX, outcome{"POST", resp(500), nil}, Class{}},
		{ClassifierRetryableAll5XX, outcome{"POST", resp(500), nil}, Class{Retryable: true}},
		{ClassifierAllSuccessful, outcome{"POST", resp(500), nil}, Class{Success: true}},
	}
	for _, tc := range cases {
		c, err := NewClassifier(tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(tc.in.method, "http://x/", nil)
		if got := c.Classify(req, tc.in.resp, tc.in.err); got != tc.want {
			t.Errorf("%s %s %v/%v: got %+v, want %+v", tc.kind, tc.in.method, tc.in.resp, tc.in.err, got, tc.want)
		}
	}
	// l5d-retryable: true from a downstream linkerd makes any failure retryable.
	c, _ := NewClassifier("")
	r := resp(502)
	r.Header.Set(HeaderRetryable, "true")
	if got := c.Classify(httptest.NewRequest("POST", "http://x/", nil), r, nil); got != (Class{Retryable: true}) {
		t.Errorf("502 with l5d-retryable: got %+v, want retryable failure", got)
	}
	if _, err := NewClassifier("io.l5d.http.bogus"); err == nil || !strings.Contains(err.Error(), `unknown kind "io.l5d.http.bogus"`) {
		t.Errorf("unknown kind: got %v", err)
	}
}

func TestClassifyHeaders(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.Header().Set(HeaderRetryable, "true") // stale, from a downstream
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	c, _ := NewClassifier(ClassifierRetryableRead5XX)
	rt := Classify(c)(transport(t))
	for _, tc := range []struct{ method, path, class, retryable string }{
		{"GET", "/ok", "1.0", ""},
		{"GET", "/fail", "0.0", "true"},
		{"POST", "/fail", "0.0", "true"}, // the downstream said so
	} {
		resp, err := get(t, rt, context.Background(), tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if got := resp.Header.Get(HeaderSuccessClass); got != tc.class {
			t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.path, HeaderSuccessClass, got, tc.class)
		}
		if got := resp.Header.Get(HeaderRetryable); got != tc.retryable {
			t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.path, HeaderRetryable, got, tc.retryable)
		}
	}
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slowbody" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	for _, tc := range []struct {
		mw   Middleware
		kind TimeoutKind
	}{
		{TotalTimeout(50 * time.Millisecond), TimeoutTotal},
		{AttemptTimeout(50 * time.Millisecond), TimeoutAttempt},
	} {
		start := time.Now()
		_, err := get(t, tc.mw(transport(t)), context.Background(), "GET", srv.URL+"/slow", nil)
		var te *TimeoutError
		if !errors.As(err, &te) || te.Kind != tc.kind {
			t.Fatalf("got %v, want *TimeoutError of kind %v", err, tc.kind)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("timeout took %v", el)
		}
		if st, retry := ErrorStatus(err); st != 503 || retry {
			t.Errorf("ErrorStatus(%v) = %d, %v; want 503, false", err, st, retry)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("errors.Is(%v, DeadlineExceeded) = false", err)
		}
	}
	// The timer covers the body too, and reports itself as the cause.
	resp, err := get(t, TotalTimeout(50*time.Millisecond)(transport(t)), context.Background(), "GET", srv.URL+"/slowbody", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("reading a body past the total timeout: got %v, want *TimeoutError", err)
	}
	if TotalTimeout(0) != nil || AttemptTimeout(-1) != nil {
		t.Error("a zero timeout must be no filter")
	}
}

func TestDeadlineCodec(t *testing.T) {
	d, err := ParseDeadline("1000 2000")
	if err != nil || d.Start.UnixNano() != 1000 || d.Deadline.UnixNano() != 2000 {
		t.Fatalf("ParseDeadline: %+v, %v", d, err)
	}
	if d.String() != "1000 2000" {
		t.Errorf("String() = %q", d.String())
	}
	for _, bad := range []string{"", "1", "1 2 3", "a 2", "1 b", "1.5 2", "99999999999999999999 1"} {
		if _, err := ParseDeadline(bad); err == nil || !strings.Contains(err.Error(), HeaderDeadline) {
			t.Errorf("ParseDeadline(%q): got %v, want an error naming the header", bad, err)
		}
	}
	h := http.Header{}
	h.Add(HeaderDeadline, "100 900")
	h.Add(HeaderDeadline, "200 1000, 50 800")
	got, ok, err := ReadDeadline(h)
	if err != nil || !ok || got.Start.UnixNano() != 200 || got.Deadline.UnixNano() != 800 {
		t.Fatalf("ReadDeadline = %v %v %v; want strictest {200 800}", got, ok, err)
	}
	if h.Get(HeaderDeadline) != "" {
		t.Error("ReadDeadline must remove the header")
	}
	h.Set(HeaderDeadline, "x")
	if _, _, err := ReadDeadline(h); err == nil {
		t.Error("ReadDeadline accepted a bad value")
	}
	if _, ok, _ := ReadDeadline(http.Header{}); ok {
		t.Error("ReadDeadline invented a deadline")
	}
}

func FuzzParseDeadline(f *testing.F) {
	for _, s := range []string{"1 2", "1700000000000000000 1700000001000000000", " 5  7 ", "-1 -2", "1,2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDeadline(s)
		if err != nil {
			return
		}
		back, err := ParseDeadline(d.String())
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", d.String(), s, err)
		}
		if !back.Start.Equal(d.Start) || !back.Deadline.Equal(d.Deadline) {
			t.Fatalf("round trip %q: %v != %v", s, back, d)
		}
		h := http.Header{}
		h.Set(HeaderDeadline, s)
		if _, _, err := ReadDeadline(h); err != nil && !strings.Contains(s, ",") {
			t.Fatalf("ReadDeadline rejected %q which ParseDeadline accepted: %v", s, err)
		}
	})
}

func TestDeadlineEnforcedAndPropagated(t *testing.T) {
	var hits atomic.Int64
	var seen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		seen.Store(r.Header.Get(HeaderDeadline))
	}))
	defer srv.Close()
	rt := Chain(EnforceDeadline(DeadlineOptions{}), TotalTimeout(time.Hour), PropagateDeadline())(transport(t))

	past := Deadline{Start: time.Now().Add(-2 * time.Second), Deadline: time.Now().Add(-time.Second)}
	_, err := get(t, rt, WithDeadline(context.Background(), past), "GET", srv.URL, nil)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Kind != TimeoutDeadline {
		t.Fatalf("past deadline: got %v, want TimeoutError(deadline)", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("a request with a past deadline reached the backend")
	}
	if st, _ := ErrorStatus(err); st != 503 {
		t.Errorf("status for deadline = %d, want 503", st)
	}

	start := time.Now().Add(-time.Second)
	future := Deadline{Start: start, Deadline: time.Now().Add(time.Minute)}
	resp, err := get(t, rt, WithDeadline(context.Background(), future), "GET", srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	d, err := ParseDeadline(seen.Load().(string))
	if err != nil {
		t.Fatalf("backend saw %q: %v", seen.Load(), err)
	}
	if !d.Start.Equal(start) || !d.Deadline.Equal(future.Deadline) {
		t.Errorf("propagated %v, want the caller's %v (tighter than the 1h total timeout)", d, future)
	}
	// Without a caller deadline, the total timeout becomes the deadline.
	resp, err = get(t, Chain(TotalTimeout(time.Second), PropagateDeadline())(transport(t)), context.Background(), "GET", srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	d, _ = ParseDeadline(seen.Load().(string))
	if left := time.Until(d.Deadline); left <= 0 || left > time.Second {
		t.Errorf("propagated deadline %v from now, want within the 1s total timeout", left)
	}
}

func TestDeadlineCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	rt := EnforceDeadline(DeadlineOptions{Cancel: true})(transport(t))
	d := Deadline{Start: time.Now(), Deadline: time.Now().Add(50 * time.Millisecond)}
	_, err := get(t, rt, WithDeadline(context.Background(), d), "GET", srv.URL, nil)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Kind != TimeoutDeadline {
		t.Fatalf("got %v, want TimeoutError(deadline)", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestBudget(t *testing.T) {
	clock := time.Unix(1000, 0)
	b, err := NewBudget(BudgetOptions{TTLSecs: ptr(10), MinRetriesPerSec: ptr(1), PercentCanRetry: ptr(0.5)})
	if err != nil {
		t.Fatal(err)
	}
	b.now = func() int64 { return clock.UnixNano() }
	// Reserve: 1/s * 10s = 10 retries with no traffic.
	n := 0
	for b.TryWithdraw() {
		n++
	}
	if n != 10 {
		t.Fatalf("reserve allowed %d retries, want 10", n)
	}
	// 100 requests at 50% buy 50 more.
	for range 100 {
		b.Deposit()
	}
	if got := b.Balance(); got != 50 {
		t.Fatalf("balance after 100 deposits = %d, want 50", got)
	}
	// After the TTL, deposits and withdrawals have expired: the reserve is back.
	clock = clock.Add(11 * time.Second)
	if got := b.Balance(); got != 10 {
		t.Fatalf("balance after ttl = %d, want 10", got)
	}
	zero, _ := NewBudget(BudgetOptions{MinRetriesPerSec: ptr(0), PercentCanRetry: ptr(0.0)})
	for range 1000 {
		zero.Deposit()
	}
	if zero.TryWithdraw() {
		t.Fatal("a budget of 0%/0 per second allowed a retry")
	}
	for _, bad := range []BudgetOptions{{TTLSecs: ptr(0)}, {MinRetriesPerSec: ptr(-1)}, {PercentCanRetry: ptr(1001.0)}} {
		if _, err := NewBudget(bad); err == nil || !strings.Contains(err.Error(), "budget.") {
			t.Errorf("NewBudget(%+v): got %v, want a budget.<key> error", bad, err)
		}
	}
}

// flaky fails every other request with 500 and records bodies it saw.
type flaky struct {
	n      atomic.Int64
	mu     sync.Mutex
	bodies []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, string(b))
	f.mu.Unlock()
	if f.n.Add(1)%2 == 1 {
		w.WriteHeader(500)
		return
	}
	io.WriteString(w, "ok")
}

func TestRetry(t *testing.T) {
	cases := []struct {
		name       string
		classifier string
		method     string
		body       func() io.Reader
		chunked    bool
		wantStatus int
		wantTries  int
	}{
		{"GET read5XX retried", ClassifierRetryableRead5XX, "GET", nil, false, 200, 2},
		{"POST read5XX not retried", ClassifierRetryableRead5XX, "POST", func() io.Reader { return strings.NewReader("hello") }, false, 500, 1},
		{"POST all5XX body replayed", ClassifierRetryableAll5XX, "POST", func() io.Reader { return strings.NewReader("hello") }, false, 200, 2},
		{"PUT chunked never retried", ClassifierRetryableAll5XX, "PUT", func() io.Reader { return strings.NewReader("hello") }, true, 500, 1},
		{"GET default classifier", "", "GET", nil, false, 500, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{}
			srv := httptest.NewServer(f)
			defer srv.Close()
			c, _ := NewClassifier(tc.classifier)
			reg := telemetry.NewRegistry()
			mw, err := Retry(RetryOptions{Backoff: &backoff.Options{Kind: "constant", Ms: 1}}, c, reg.Scope())
			if err != nil {
				t.Fatal(err)
			}
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			req, _ := http.NewRequest(tc.method, srv.URL, body)
			if tc.chunked {
				req.GetBody, req.ContentLength = nil, -1
			} else if req.Body != nil {
				req.GetBody = nil // force the buffering path, as for server requests
			}
			resp, err := mw(transport(t)).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if resp.StatusCode != tc.wantStatus || int(f.n.Load()) != tc.wantTries {
				t.Fatalf("status %d after %d tries, want %d after %d", resp.StatusCode, f.n.Load(), tc.wantStatus, tc.wantTries)
			}
			if tc.body != nil {
				for i, b := range f.bodies {
					if b != "hello" {
						t.Errorf("attempt %d body = %q, want hello", i, b)
					}
				}
			}
			if got := reg.Scope().Counter("retries/total").Value(); got != int64(tc.wantTries-1) {
				t.Errorf("retries/total = %d, want %d", got, tc.wantTries-1)
			}
		})
	}
}

// A flood of always-failing requests: retries stay within the budget.
func TestRetryBudgetCap(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(503)
	}))
	defer srv.Close()
	c, _ := NewClassifier(ClassifierRetryableRead5XX)
	reg := telemetry.NewRegistry()
	mw, err := Retry(RetryOptions{Budget: BudgetOptions{MinRetriesPerSec: ptr(5), PercentCanRetry: ptr(0.1), TTLSecs: ptr(10)}}, c, reg.Scope())
	if err != nil {
		t.Fatal(err)
	}
	rt := mw(transport(t))
	const n = 2000
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				resp, err := get(t, rt, context.Background(), "GET", srv.URL, nil)
				if err != nil {
					t.Error(err)
					return
				}
				readAll(t, resp)
			}
		}()
	}
	wg.Wait()
	retries := reg.Scope().Counter("retries/total").Value()
	// Allowed: reserve 5/s*10s = 50, plus 10% of 2000 = 200.
	if retries > 250 || retries < 200 {
		t.Fatalf("retries = %d for %d failing requests, want within the budget (≤ 250, ≈ 250)", retries, n)
	}
	if hits.Load() != n+retries {
		t.Errorf("backend hits = %d, want %d", hits.Load(), n+retries)
	}
	if ex := reg.Scope().Counter("retries/budget_exhausted").Value(); ex < n-250 {
		t.Errorf("budget_exhausted = %d, want ≥ %d", ex, n-250)
	}
	t.Logf("flood: %d requests, %d retries, %d budget exhausted", n, retries, reg.Scope().Counter("retries/budget_exhausted").Value())
}

func TestConnectErrorRequeued(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer srv.Close()
	// First attempt goes to a closed port, the next to the live server.
	var n atomic.Int64
	tr := transport(t)
	redirect := RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
		out := r.Clone(r.Context())
		if n.Add(1) == 1 {
			out.URL.Host = dead
		} else {
			out.URL.Host = strings.TrimPrefix(srv.URL, "http://")
		}
		return tr.RoundTrip(out)
	})
	_, err = get(t, tr, context.Background(), "POST", "http://"+dead, strings.NewReader("x"))
	var ce *ConnectError
	if !errors.As(err, &ce) || !IsNotWritten(err) {
		t.Fatalf("dial to closed port: got %T %v, want *ConnectError", err, err)
	}
	if st, retry := ErrorStatus(err); st != 502 || !retry {
		t.Errorf("ErrorStatus(connect) = %d, %v; want 502, true", st, retry)
	}
	reg := telemetry.NewRegistry()
	rq, err := Requeue(BudgetOptions{}, reg.Scope())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://placeholder/", strings.NewReader("payload"))
	req.GetBody = nil
	resp, err := rq(redirect).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "payload" {
		t.Errorf("requeued POST body = %q", got)
	}
	if got := reg.Scope().Counter("retries/requeues").Value(); got != 1 {
		t.Errorf("retries/requeues = %d, want 1", got)
	}
}

func TestLimit(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	reg := telemetry.NewRegistry()
	rt := Limit(LimitOptions{MaxConcurrentRequests: 2}, reg.Scope())(transport(t))
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := get(t, rt, context.Background(), "GET", srv.URL, nil)
			if err != nil {
				t.Error(err)
				return
			}
			readAll(t, resp)
		}()
	}
	concurrency := func() (c float64) {
		reg.Each(func(m telemetry.Metric) {
			if m.Name == "request_concurrency" {
				c = m.Gauge()
			}
		})
		return c
	}
	for deadline := time.Now().Add(5 * time.Second); concurrency() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("two requests never became concurrent")
		}
	}
	_, err := get(t, rt, context.Background(), "GET", srv.URL, nil)
	var re *RejectedError
	if !errors.As(err, &re) {
		t.Fatalf("third concurrent request: got %v, want *RejectedError", err)
	}
	if st, retry := ErrorStatus(err); st != 503 || !retry {
		t.Errorf("ErrorStatus(rejected) = %d, %v; want 503, true", st, retry)
	}
	close(release)
	wg.Wait()
	resp, err := get(t, rt, context.Background(), "GET", srv.URL, nil)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	readAll(t, resp)
	if got := reg.Scope().Counter("dropped_requests").Value(); got != 1 {
		t.Errorf("dropped_requests = %d, want 1", got)
	}
}

// A retry waiting out its backoff stops when the total timeout expires.
func TestRetryBackoffBoundedByTotalTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	c, _ := NewClassifier(ClassifierRetryableRead5XX)
	retry, err := Retry(RetryOptions{Backoff: &backoff.Options{Kind: "constant", Ms: 10000}}, c, telemetry.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = get(t, Chain(TotalTimeout(100*time.Millisecond), retry)(transport(t)), context.Background(), "GET", srv.URL, nil)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Kind != TimeoutTotal {
		t.Fatalf("got %v, want a total TimeoutError", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v: the backoff ignored the total timeout", el)
	}
	if _, err := Retry(RetryOptions{Backoff: &backoff.Options{Kind: "bogus"}}, c, telemetry.Scope{}); err == nil || !strings.Contains(err.Error(), "retries.backoff.kind") {
		t.Errorf("bad backoff: got %v, want a retries.backoff.kind error", err)
	}
}

// One request whose endpoint never accepts a connection requeues at most
// MaxRequeueShare of the budget's balance (Finagle's requeue filter), so
// that the requests after it still find a budget; the stop is counted in
// retries/request_limit, not budget_exhausted.
func TestRequeuesPerRequestCapped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	var dials atomic.Int64
	tr := transport(t)
	counting := RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
		dials.Add(1)
		return tr.RoundTrip(r)
	})
	reg := telemetry.NewRegistry()
	// The defaults: a reserve of 10/s over 10 s, a balance of 100.
	rq, err := Requeue(BudgetOptions{}, reg.Scope())
	if err != nil {
		t.Fatal(err)
	}
	requeues := reg.Scope().Counter("retries/requeues")
	limited := reg.Scope().Counter("retries/request_limit")
	exhausted := reg.Scope().Counter("retries/budget_exhausted")
	var perRequest []int64
	for i := 0; i < 3; i++ {
		before, dialsBefore := requeues.Value(), dials.Load()
		req, _ := http.NewRequest("GET", "http://"+dead+"/", nil)
		if _, err := rq(counting).RoundTrip(req); !IsNotWritten(err) {
			t.Fatalf("request %d: err = %v, want the connection error", i, err)
		}
		perRequest = append(perRequest, requeues.Value()-before)
		if got := dials.Load() - dialsBefore; got != perRequest[i]+1 {
			t.Errorf("request %d: %d attempts for %d requeues", i, got, perRequest[i])
		}
	}
	// Balance 100 (+ deposits of 20% per request, 0 whole): ceil(0.2 × 100)
	// = 20 for the first, then ceil(0.2 × 80) = 16, ceil(0.2 × 64) = 13.
	if want := []int64{20, 16, 13}; !slices.Equal(perRequest, want) {
		t.Errorf("requeues per request = %v, want %v", perRequest, want)
	}
	if limited.Value() != 3 || exhausted.Value() != 0 {
		t.Errorf("request_limit = %d, budget_exhausted = %d; want 3 and 0", limited.Value(), exhausted.Value())
	}
}
