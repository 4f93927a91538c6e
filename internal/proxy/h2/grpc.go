package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/router"
)

// GRPCCode is a gRPC status code (google.golang.org/grpc/codes numbering).
type GRPCCode int

// The gRPC status codes the proxy produces or classifies by name.
const (
	GRPCOK                 GRPCCode = 0
	GRPCCanceled           GRPCCode = 1
	GRPCUnknown            GRPCCode = 2
	GRPCInvalidArgument    GRPCCode = 3
	GRPCDeadlineExceeded   GRPCCode = 4
	GRPCResourceExhausted  GRPCCode = 8
	GRPCFailedPrecondition GRPCCode = 9
	GRPCUnimplemented      GRPCCode = 12
	GRPCInternal           GRPCCode = 13
	GRPCUnavailable        GRPCCode = 14
)

// Header names of the gRPC wire protocol (canonical net/http forms).
const (
	hdrGRPCStatus  = "Grpc-Status"
	hdrGRPCMessage = "Grpc-Message"
	hdrGRPCTimeout = "Grpc-Timeout"
)

// IsGRPC reports whether a request or response with header h is gRPC:
// content-type application/grpc, optionally followed by +proto, +json...
func IsGRPC(h http.Header) bool {
	ct := h["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	v := ct[0]
	const p = "application/grpc"
	if len(v) < len(p) || !strings.EqualFold(v[:len(p)], p) {
		return false
	}
	return len(v) == len(p) || v[len(p)] == '+' || v[len(p)] == ';'
}

// GRPCStatus returns the grpc-status of a response: from its headers for
// a trailers-only response, else from its trailers (which are only known
// once the body has been read to EOF). ok is false while it is unknown.
func GRPCStatus(resp *http.Response) (code GRPCCode, ok bool) {
	if c, ok := parseStatus(resp.Header); ok {
		return c, true
	}
	return parseStatus(resp.Trailer)
}

func parseStatus(h http.Header) (GRPCCode, bool) {
	vs := h[hdrGRPCStatus]
	if len(vs) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(vs[0]))
	if err != nil || n < 0 {
		return GRPCUnknown, true
	}
	return GRPCCode(n), true
}

// Class is the outcome of classifying one response.
type Class int

// The classes, as Linkerd's ResponseClass.
const (
	Success Class = iota
	Failure
	RetryableFailure
)

func (c Class) String() string {
	switch c {
	case Success:
		return "success"
	case Failure:
		return "failure"
	}
	return "retryable failure"
}

// GRPCClassifier is one of the io.l5d.h2.grpc.* response classifiers
// (spec/config.md §6.6): a gRPC status in SuccessCodes is a success, any
// other a failure, retryable when Retryable says so.
type GRPCClassifier struct {
	// Kind is the classifier's config kind.
	Kind string
	// SuccessCodes are the statuses counted as success (default {0}).
	SuccessCodes []GRPCCode
	// RetryableCodes are the retryable statuses (retryableStatusCodes).
	RetryableCodes []GRPCCode
	// retryable decides retryability of a failed response.
	retryable func(code GRPCCode, resp *http.Response) bool
}

// The gRPC classifier kinds.
const (
	KindGRPCDefault              = "io.l5d.h2.grpc.default"
	KindGRPCCompliant            = "io.l5d.h2.grpc.compliant"
	KindGRPCAlwaysRetryable      = "io.l5d.h2.grpc.alwaysRetryable"
	KindGRPCNeverRetryable       = "io.l5d.h2.grpc.neverRetryable"
	KindGRPCRetryableStatusCodes = "io.l5d.h2.grpc.retryableStatusCodes"
)

// NewGRPCClassifier returns the classifier of kind. successCodes nil
// means {0}; retryableCodes is used by retryableStatusCodes only (and is
// required there).
func NewGRPCClassifier(kind string, successCodes, retryableCodes []int) (*GRPCClassifier, error) {
	c := &GRPCClassifier{Kind: kind, SuccessCodes: []GRPCCode{GRPCOK}}
	if successCodes != nil {
		c.SuccessCodes = toCodes(successCodes)
	}
	switch kind {
	case KindGRPCDefault:
		c.retryable = func(code GRPCCode, _ *http.Response) bool { return code == GRPCUnavailable }
	case KindGRPCCompliant:
		// UNAVAILABLE, and the transport-level signals gRPC's retry
		// design treats as "not processed": REFUSED_STREAM resets (seen
		// as errors, see ClassifyError) and HTTP 429/502/503/504.
		c.retryable = func(code GRPCCode, resp *http.Response) bool {
			if code == GRPCUnavailable {
				return true
			}
			switch resp.StatusCode {
			case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				return true
			}
			return false
		}
	case KindGRPCAlwaysRetryable:
		c.retryable = func(GRPCCode, *http.Response) bool { return true }
	case KindGRPCNeverRetryable:
		c.retryable = func(GRPCCode, *http.Response) bool { return false }
	case KindGRPCRetryableStatusCodes:
		if len(retryableCodes) == 0 {
			return nil, fmt.Errorf("%s needs retryableStatusCodes", kind)
		}
		c.RetryableCodes = toCodes(retryableCodes)
		c.retryable = func(code GRPCCode, _ *http.Response) bool { return slices.Contains(c.RetryableCodes, code) }
	default:
		return nil, fmt.Errorf("unknown gRPC classifier kind %q (known: %s, %s, %s, %s, %s)", kind,
			KindGRPCDefault, KindGRPCCompliant, KindGRPCAlwaysRetryable, KindGRPCNeverRetryable, KindGRPCRetryableStatusCodes)
	}
	for _, n := range append(append([]int(nil), successCodes...), retryableCodes...) {
		if n < 0 || n > 16 {
			return nil, fmt.Errorf("%s: %d is not a gRPC status code (0-16)", kind, n)
		}
	}
	return c, nil
}

func toCodes(ns []int) []GRPCCode {
	out := make([]GRPCCode, len(ns))
	for i, n := range ns {
		out[i] = GRPCCode(n)
	}
	return out
}

// ClassifyResponse classifies a response whose final status is known
// (headers of a trailers-only response, or trailers after EOF). final is
// false when the status is not known yet; the class is then Success
// (nothing has failed so far), and the caller classifies again at EOF.
//
// A response without grpc-status and an HTTP status other than 200 (e.g.
// a 503 from an intermediary) is classified by the code a gRPC client
// reports for it (HTTPToGRPC: 429/502/503/504 are UNAVAILABLE).
func (c *GRPCClassifier) ClassifyResponse(resp *http.Response, final bool) Class {
	code, ok := GRPCStatus(resp)
	if !ok {
		switch {
		case resp.StatusCode != http.StatusOK:
			code = HTTPToGRPC(resp.StatusCode)
		case final && IsGRPC(resp.Header):
			// A gRPC response that ended without grpc-status is a
			// protocol error; gRPC clients report INTERNAL.
			code = GRPCInternal
		default:
			return Success
		}
	}
	if slices.Contains(c.SuccessCodes, code) {
		return Success
	}
	if c.retryable(code, resp) {
		return RetryableFailure
	}
	return Failure
}

// ClassifyError classifies a request that got no response. A stream the
// server refused (REFUSED_STREAM) or a connection that failed before the
// request was written is retryable for every kind but neverRetryable.
func (c *GRPCClassifier) ClassifyError(err error) Class {
	if c.Kind == KindGRPCNeverRetryable {
		return Failure
	}
	if c.Kind == KindGRPCAlwaysRetryable || IsUnsent(err) {
		return RetryableFailure
	}
	var re interface{ Retryable() bool }
	if errors.As(err, &re) && re.Retryable() {
		return RetryableFailure
	}
	return Failure
}

// RouterClassifier adapts c to router.Classifier, which is asked when the
// response headers arrive: a trailers-only response is classified by its
// grpc-status; a streamed one counts as a success until its trailers say
// otherwise (use ObserveStatus to account for them at EOF).
func (c *GRPCClassifier) RouterClassifier() router.Classifier {
	return func(_ *http.Request, resp *http.Response, err error) bool {
		if err != nil {
			return false
		}
		return c.ClassifyResponse(resp, false) == Success
	}
}

// Classify implements middleware.Classifier (the retry and classification
// filters): called when the response headers arrive, it sees the status
// of trailers-only responses, and of responses whose trailers are
// already in (read to EOF). A response with l5d-retryable: true (an
// upstream linkerd that never sent the request) is retryable, as for the
// HTTP classifiers, except with neverRetryable.
func (c *GRPCClassifier) Classify(_ *http.Request, resp *http.Response, err error) middleware.Class {
	var cl Class
	if err != nil {
		cl = c.ClassifyError(err)
	} else {
		_, known := GRPCStatus(resp)
		cl = c.ClassifyResponse(resp, known)
		if cl == Failure && c.Kind != KindGRPCNeverRetryable && resp.Header.Get(middleware.HeaderRetryable) == "true" {
			cl = RetryableFailure
		}
	}
	return middleware.Class{Success: cl == Success, Retryable: cl == RetryableFailure}
}

// NewClassifier returns the h2 response classifier of kind: the
// io.l5d.h2.grpc.* kinds (successCodes, retryableCodes as for
// NewGRPCClassifier), or the io.l5d.h2.* twins of the HTTP classifiers
// (io.l5d.h2.retryableRead5XX is io.l5d.http.retryableRead5XX...). An
// empty kind is io.l5d.h2.nonRetryable5XX, the h2 default.
func NewClassifier(kind string, successCodes, retryableCodes []int) (middleware.Classifier, error) {
	if kind == "" {
		kind = "io.l5d.h2.nonRetryable5XX"
	}
	if strings.HasPrefix(kind, "io.l5d.h2.grpc.") {
		return NewGRPCClassifier(kind, successCodes, retryableCodes)
	}
	rest, ok := strings.CutPrefix(kind, "io.l5d.h2.")
	if !ok {
		return nil, fmt.Errorf("unknown h2 response classifier kind %q", kind)
	}
	c, err := middleware.NewClassifier("io.l5d.http." + rest)
	if err != nil {
		return nil, fmt.Errorf("unknown h2 response classifier kind %q", kind)
	}
	return c, nil
}

// ObserveStatus calls fn once with the response's final gRPC status when
// it is known: at once for a trailers-only response, else when its body
// reaches EOF and the trailers are in. found is false when the stream
// ended (or was closed early) without any grpc-status.
func ObserveStatus(resp *http.Response, fn func(code GRPCCode, found bool)) {
	if code, ok := parseStatus(resp.Header); ok || resp.Body == nil || resp.Body == http.NoBody {
		fn(code, ok)
		return
	}
	resp.Body = &statusBody{rc: resp.Body, resp: resp, fn: fn}
}

type statusBody struct {
	rc    io.ReadCloser
	resp  *http.Response
	fn    func(GRPCCode, bool)
	fired atomic.Bool
}

func (b *statusBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		b.fire()
	}
	return n, err
}

func (b *statusBody) Close() error {
	err := b.rc.Close()
	b.fire()
	return err
}

func (b *statusBody) fire() {
	if b.fired.CompareAndSwap(false, true) {
		code, ok := parseStatus(b.resp.Trailer)
		b.fn(code, ok)
	}
}

// HTTPToGRPC maps an HTTP status to the gRPC code a gRPC client reports
// for it (gRPC's "HTTP to gRPC Status Code Mapping").
func HTTPToGRPC(status int) GRPCCode {
	switch status {
	case http.StatusBadRequest:
		return GRPCInternal
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusNotFound:
		return GRPCUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return GRPCUnavailable
	}
	return GRPCUnknown
}

// ErrorCode is the gRPC status the proxy answers a failure with: requests
// that named nothing routable are INVALID_ARGUMENT (bad l5d-dtab, unknown
// destination) or FAILED_PRECONDITION (a proxy loop); expired deadlines
// and timeouts are DEADLINE_EXCEEDED; a caller that went away is
// CANCELLED; everything else that made the proxy fail (no route, no
// endpoint, connection refused, overload) is UNAVAILABLE, which gRPC
// clients may retry.
func ErrorCode(err error, e proxy.ErrorResponse) GRPCCode {
	var (
		cd *proxy.CallDepthError
		to *router.TimeoutError
		bt *router.BindingTimeoutError
	)
	switch {
	case errors.As(err, &cd):
		return GRPCFailedPrecondition
	case errors.As(err, &to), errors.As(err, &bt), errors.Is(err, context.DeadlineExceeded):
		return GRPCDeadlineExceeded
	case errors.Is(err, context.Canceled):
		return GRPCCanceled
	case e.Status == http.StatusBadRequest:
		return GRPCInvalidArgument
	}
	return GRPCUnavailable
}

// WriteGRPCError answers a gRPC request with a trailers-only response:
// HTTP 200, content-type application/grpc, grpc-status and grpc-message,
// and (unless clearContext) l5d-err. gRPC clients ignore the HTTP status
// of a gRPC response, so the error has to be in grpc-status to be seen.
func WriteGRPCError(w http.ResponseWriter, code GRPCCode, e proxy.ErrorResponse, clearContext bool, maxHeaderBytes int) {
	h := w.Header()
	h["Content-Type"] = []string{"application/grpc"}
	h[hdrGRPCStatus] = []string{strconv.Itoa(int(code))}
	if !clearContext {
		h[hdrGRPCMessage] = []string{EncodeGRPCMessage(e.Message)}
		h[proxy.HeaderErr] = []string{encodeErr(e.Message, maxHeaderBytes)}
		if e.Retryable {
			h[proxy.HeaderRetryable] = []string{"true"}
		}
	}
	w.WriteHeader(http.StatusOK)
}

// encodeErr is the l5d-err value of msg: form-encoded, truncated to max
// bytes without cutting an escape in half (as proxy.WriteError does).
func encodeErr(msg string, max int) string {
	v := url.QueryEscape(msg)
	if max > 0 && len(v) > max {
		v = v[:max]
		if i := strings.LastIndexByte(v, '%'); i >= 0 && i > len(v)-3 {
			v = v[:i]
		}
	}
	return v
}

// EncodeGRPCMessage percent-encodes a grpc-message value: bytes outside
// printable ASCII, and '%', become %XX (gRPC's HTTP/2 protocol spec).
func EncodeGRPCMessage(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// ParseGRPCTimeout decodes a grpc-timeout value: at most 8 digits and a
// unit (H, M, S, m, u, n).
func ParseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	for i := 0; i < len(v)-1; i++ {
		if v[i] < '0' || v[i] > '9' { // ParseInt alone would take a sign
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > int64(math.MaxInt64/unit) { // 99999999H is past time.Duration's ~292 years
		return math.MaxInt64, true
	}
	return time.Duration(n) * unit, true
}

var _ middleware.Classifier = (*GRPCClassifier)(nil)
