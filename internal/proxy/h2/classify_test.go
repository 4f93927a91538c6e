package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/router"
)

func grpcResp(httpStatus int, headerStatus, trailerStatus string) *http.Response {
	r := &http.Response{StatusCode: httpStatus, Header: http.Header{"Content-Type": {"application/grpc"}}, Trailer: http.Header{}}
	if headerStatus != "" {
		r.Header.Set("Grpc-Status", headerStatus)
	}
	if trailerStatus != "" {
		r.Trailer.Set("Grpc-Status", trailerStatus)
	}
	return r
}

func TestGRPCClassifiers(t *testing.T) {
	type row struct {
		resp  *http.Response
		final bool
		want  Class
	}
	for _, tc := range []struct {
		kind      string
		success   []int
		retryable []int
		rows      []row
	}{
		{KindGRPCDefault, nil, nil, []row{
			{grpcResp(200, "0", ""), true, Success},
			{grpcResp(200, "", "0"), true, Success},
			{grpcResp(200, "14", ""), true, RetryableFailure},
			{grpcResp(200, "", "14"), true, RetryableFailure},
			{grpcResp(200, "", "2"), true, Failure},
			{grpcResp(200, "", ""), false, Success}, // not known yet
			{grpcResp(200, "", ""), true, Failure},  // ended without a status
			{grpcResp(503, "", ""), true, RetryableFailure},
			{grpcResp(500, "", ""), true, Failure},
		}},
		{KindGRPCDefault, []int{0, 5}, nil, []row{
			{grpcResp(200, "5", ""), true, Success},
			{grpcResp(200, "", "6"), true, Failure},
		}},
		{KindGRPCCompliant, nil, nil, []row{
			{grpcResp(200, "14", ""), true, RetryableFailure},
			{grpcResp(200, "4", ""), true, Failure},
			{grpcResp(429, "", ""), true, RetryableFailure},
			{grpcResp(504, "", ""), true, RetryableFailure},
		}},
		{KindGRPCAlwaysRetryable, nil, nil, []row{
			{grpcResp(200, "", "3"), true, RetryableFailure},
		}},
		{KindGRPCNeverRetryable, nil, nil, []row{
			{grpcResp(200, "", "14"), true, Failure},
		}},
		{KindGRPCRetryableStatusCodes, nil, []int{4, 8}, []row{
			{grpcResp(200, "", "8"), true, RetryableFailure},
			{grpcResp(200, "", "14"), true, Failure},
			{grpcResp(200, "", "0"), true, Success},
		}},
	} {
		c, err := NewGRPCClassifier(tc.kind, tc.success, tc.retryable)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range tc.rows {
			if got := c.ClassifyResponse(r.resp, r.final); got != r.want {
				t.Errorf("%s %v row %d (http %d, header %q, trailer %q, final %v) = %v, want %v", tc.kind, tc.success, i,
					r.resp.StatusCode, r.resp.Header.Get("Grpc-Status"), r.resp.Trailer.Get("Grpc-Status"), r.final, got, r.want)
			}
		}
	}
}

func TestGRPCClassifierErrors(t *testing.T) {
	if _, err := NewGRPCClassifier(KindGRPCRetryableStatusCodes, nil, nil); err == nil || !strings.Contains(err.Error(), "retryableStatusCodes") {
		t.Errorf("retryableStatusCodes without codes: %v", err)
	}
	if _, err := NewGRPCClassifier(KindGRPCDefault, []int{0, 17}, nil); err == nil || !strings.Contains(err.Error(), "17") {
		t.Errorf("code 17: %v", err)
	}
	if _, err := NewGRPCClassifier("io.l5d.h2.grpc.nope", nil, nil); err == nil || !strings.Contains(err.Error(), KindGRPCDefault) {
		t.Errorf("unknown kind: %v", err)
	}
	c, _ := NewGRPCClassifier(KindGRPCDefault, nil, nil)
	dial := &net.OpError{Op: "dial", Err: errors.New("refused")}
	if got := c.ClassifyError(dial); got != RetryableFailure {
		t.Errorf("dial error = %v, want retryable", got)
	}
	if got := c.ClassifyError(errors.New("reset")); got != Failure {
		t.Errorf("other error = %v, want failure", got)
	}
	never, _ := NewGRPCClassifier(KindGRPCNeverRetryable, nil, nil)
	if got := never.ClassifyError(dial); got != Failure {
		t.Errorf("neverRetryable dial error = %v, want failure", got)
	}
	rc := c.RouterClassifier()
	if rc(nil, grpcResp(200, "14", ""), nil) || !rc(nil, grpcResp(200, "", ""), nil) || rc(nil, nil, dial) {
		t.Error("RouterClassifier disagrees with Classify")
	}
}

// trailerBody sets the response's trailers when it reaches EOF, as
// net/http's clients do.
type trailerBody struct {
	r    io.Reader
	resp *http.Response
	set  http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.resp.Trailer = b.set
	}
	return n, err
}
func (b *trailerBody) Close() error { return nil }

func TestObserveStatus(t *testing.T) {
	type result struct {
		code  GRPCCode
		found bool
	}
	got := make(chan result, 2)
	fn := func(c GRPCCode, ok bool) { got <- result{c, ok} }

	// Trailers-only: at once.
	ObserveStatus(grpcResp(200, "7", ""), fn)
	if r := <-got; r != (result{7, true}) {
		t.Errorf("trailers-only = %v, want 7", r)
	}
	// Streamed: at EOF, once.
	resp := grpcResp(200, "", "")
	resp.Body = &trailerBody{r: strings.NewReader("data"), resp: resp, set: http.Header{"Grpc-Status": {"14"}}}
	ObserveStatus(resp, fn)
	select {
	case r := <-got:
		t.Fatalf("status reported before EOF: %v", r)
	default:
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := <-got; r != (result{14, true}) {
		t.Errorf("streamed = %v, want 14", r)
	}
	select {
	case r := <-got:
		t.Errorf("reported twice: %v", r)
	default:
	}
	// Closed early: not found.
	resp = grpcResp(200, "", "")
	resp.Body = &trailerBody{r: strings.NewReader("data"), resp: resp}
	ObserveStatus(resp, fn)
	resp.Body.Close()
	if r := <-got; r.found {
		t.Errorf("closed early = %v, want not found", r)
	}
}

func TestGRPCHelpers(t *testing.T) {
	for v, want := range map[string]bool{
		"application/grpc": true, "application/grpc+proto": true, "Application/GRPC;x=1": true,
		"application/grpcx": false, "application/json": false, "": false,
	} {
		if got := IsGRPC(http.Header{"Content-Type": {v}}); got != want {
			t.Errorf("IsGRPC(%q) = %v", v, got)
		}
	}
	for v, want := range map[string]time.Duration{"100m": 100 * time.Millisecond, "1S": time.Second, "2H": 2 * time.Hour, "5u": 5 * time.Microsecond, "99999999n": 99999999} {
		if got, ok := ParseGRPCTimeout(v); !ok || got != want {
			t.Errorf("ParseGRPCTimeout(%q) = %v, %v; want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "m", "100", "123456789S", "-1S", "1x"} {
		if _, ok := ParseGRPCTimeout(v); ok {
			t.Errorf("ParseGRPCTimeout(%q) accepted", v)
		}
	}
	if got := EncodeGRPCMessage("a 100% ü\n"); got != "a 100%25 %C3%BC%0A" {
		t.Errorf("EncodeGRPCMessage = %q", got)
	}
	for _, tc := range []struct {
		err  error
		want GRPCCode
	}{
		{&proxy.CallDepthError{Max: 3}, GRPCFailedPrecondition},
		{&router.TimeoutError{Timeout: time.Second}, GRPCDeadlineExceeded},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), GRPCDeadlineExceeded},
		{context.Canceled, GRPCCanceled},
		{&proxy.UnidentifiedError{Reason: "x"}, GRPCInvalidArgument},
		{&router.NoRouteError{Reason: "neg"}, GRPCUnavailable},
		{&proxy.OverloadError{Max: 1}, GRPCUnavailable},
	} {
		if got := ErrorCode(tc.err, proxy.MapError(nil, tc.err)); got != tc.want {
			t.Errorf("ErrorCode(%T) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestNewClassifierAsMiddlewareClassifier(t *testing.T) {
	req := httptestRequest("POST")
	for _, tc := range []struct {
		kind string
		resp *http.Response
		err  error
		want middleware.Class
	}{
		{"io.l5d.h2.grpc.default", grpcResp(200, "14", ""), nil, middleware.Class{Retryable: true}},
		{"io.l5d.h2.grpc.default", grpcResp(200, "", "0"), nil, middleware.Class{Success: true}},
		{"io.l5d.h2.grpc.default", grpcResp(200, "", "2"), nil, middleware.Class{}},
		{"io.l5d.h2.grpc.default", withHeader(grpcResp(200, "13", ""), "L5d-Retryable", "true"), nil, middleware.Class{Retryable: true}},
		{"io.l5d.h2.grpc.neverRetryable", withHeader(grpcResp(200, "13", ""), "L5d-Retryable", "true"), nil, middleware.Class{}},
		{"io.l5d.h2.grpc.default", nil, &net.OpError{Op: "dial", Err: errors.New("refused")}, middleware.Class{Retryable: true}},
		{"io.l5d.h2.retryableAll5XX", &http.Response{StatusCode: 503, Header: http.Header{}}, nil, middleware.Class{Retryable: true}},
		{"", &http.Response{StatusCode: 503, Header: http.Header{}}, nil, middleware.Class{}},
		{"io.l5d.h2.allSuccessful", &http.Response{StatusCode: 503, Header: http.Header{}}, nil, middleware.Class{Success: true}},
	} {
		c, err := NewClassifier(tc.kind, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		if got := c.Classify(req, tc.resp, tc.err); got != tc.want {
			t.Errorf("%s: Classify = %+v, want %+v", tc.kind, got, tc.want)
		}
	}
	for _, kind := range []string{"io.l5d.http.nonRetryable5XX", "io.l5d.h2.nope", "io.l5d.h2.grpc.nope"} {
		if _, err := NewClassifier(kind, nil, nil); err == nil || !strings.Contains(err.Error(), "nope") && !strings.Contains(err.Error(), kind) {
			t.Errorf("NewClassifier(%q) = %v, want an error naming it", kind, err)
		}
	}
}

func withHeader(r *http.Response, k, v string) *http.Response {
	r.Header.Set(k, v)
	return r
}

func httptestRequest(method string) *http.Request {
	r, _ := http.NewRequest(method, "http://x/", nil)
	return r
}
