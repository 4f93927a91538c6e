package middleware

import (
	"fmt"
	"net/http"
	"strings"
)

// Class is the outcome of one request as a response classifier sees it.
type Class struct {
	Success   bool
	Retryable bool // only meaningful when !Success
}

// Classifier is Linkerd's service.responseClassifier: it decides whether a
// response (or transport error) is a success, and whether a failure may be
// retried. resp is nil exactly when err is not.
type Classifier interface {
	Classify(req *http.Request, resp *http.Response, err error) Class
}

// ClassifierFunc adapts a function to Classifier.
type ClassifierFunc func(*http.Request, *http.Response, error) Class

// Classify calls f.
func (f ClassifierFunc) Classify(req *http.Request, resp *http.Response, err error) Class {
	return f(req, resp, err)
}

// Response classifier kinds (service.responseClassifier.kind).
const (
	ClassifierNonRetryable5XX        = "io.l5d.http.nonRetryable5XX"
	ClassifierRetryableRead5XX       = "io.l5d.http.retryableRead5XX"
	ClassifierRetryableIdempotent5XX = "io.l5d.http.retryableIdempotent5XX"
	ClassifierRetryableAll5XX        = "io.l5d.http.retryableAll5XX"
	ClassifierAllSuccessful          = "io.l5d.http.allSuccessful"
)

// ClassifierKinds lists the kinds NewClassifier knows, in the order of
// config.md §6.6.
var ClassifierKinds = []string{
	ClassifierNonRetryable5XX, ClassifierRetryableRead5XX, ClassifierRetryableIdempotent5XX,
	ClassifierRetryableAll5XX, ClassifierAllSuccessful,
}

// NewClassifier returns the classifier of a Linkerd kind ("" means the
// default, nonRetryable5XX), layered with the always-on rule: a failure
// whose response carries l5d-retryable: true is retryable.
func NewClassifier(kind string) (Classifier, error) {
	var retryable func(method string) bool
	switch kind {
	case "", ClassifierNonRetryable5XX:
		retryable = func(string) bool { return false }
	case ClassifierRetryableRead5XX:
		retryable = isRead
	case ClassifierRetryableIdempotent5XX:
		retryable = func(m string) bool { return isRead(m) || m == http.MethodPut || m == http.MethodDelete }
	case ClassifierRetryableAll5XX:
		retryable = func(string) bool { return true }
	case ClassifierAllSuccessful:
		return ClassifierFunc(func(*http.Request, *http.Response, error) Class { return Class{Success: true} }), nil
	default:
		return nil, fmt.Errorf("responseClassifier.kind: unknown kind %q (known: %s)", kind, strings.Join(ClassifierKinds, ", "))
	}
	return ClassifierFunc(func(req *http.Request, resp *http.Response, err error) Class {
		if err == nil && resp.StatusCode < 500 {
			return Class{Success: true}
		}
		if retryable(req.Method) {
			return Class{Retryable: true}
		}
		if resp != nil && resp.Header.Get(HeaderRetryable) == "true" {
			return Class{Retryable: true}
		}
		return Class{}
	}), nil
}

// Failure reports whether c classifies the outcome as a failure; its
// signature is balancer.FailureFunc's.
func Failure(c Classifier) func(*http.Request, *http.Response, error) bool {
	return func(req *http.Request, resp *http.Response, err error) bool {
		return !c.Classify(req, resp, err).Success
	}
}

func isRead(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// Response headers set by Classify.
const (
	HeaderSuccessClass = "l5d-success-class"
	HeaderRetryable    = "l5d-retryable"

	// Their canonical forms, the keys http.Header stores them under
	// (TestClassifyCanonicalKeys checks them against
	// http.CanonicalHeaderKey).
	canonSuccessClass = "L5d-Success-Class"
	canonRetryable    = "L5d-Retryable"
)

var (
	successValue = [1]string{"1.0"}
	failureValue = [1]string{"0.0"}
	trueValue    = [1]string{"true"}
)

// Classify sets l5d-success-class ("1.0" success, "0.0" failure) on every
// response, and l5d-retryable: true on retryable failures (removing a
// stale one otherwise), so that an upstream linkerd can classify and retry.
// It goes outside Retry so that it describes the response actually
// returned. Transport errors pass through: the proxy renders them with
// ErrorStatus.
func Classify(c Classifier) Middleware {
	// The values are shared by every response, read-only: capacity one, so
	// that an Add appends to a copy; nothing in Linnet writes a header
	// value in place.
	return func(next http.RoundTripper) http.RoundTripper {
		return RoundTripperFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			if err != nil {
				return nil, err
			}
			ClassifyResponse(c, req, resp)
			return resp, nil
		})
	}
}

// ClassifyResponse classifies resp with c and writes the outcome on it
// (l5d-success-class, and l5d-retryable for a retryable failure), as the
// Classify module does; the router's express lane calls it directly.
func ClassifyResponse(c Classifier, req *http.Request, resp *http.Response) Class {
	cl := c.Classify(req, resp, nil)
	if resp.Header == nil {
		resp.Header = make(http.Header, 2)
	}
	// Canonical keys assigned directly: Header.Set and Del would
	// canonicalise the lower-case names, allocating on every response.
	if cl.Success {
		resp.Header[canonSuccessClass] = successValue[:1:1]
	} else {
		resp.Header[canonSuccessClass] = failureValue[:1:1]
	}
	if !cl.Success && cl.Retryable {
		resp.Header[canonRetryable] = trueValue[:1:1]
	} else {
		delete(resp.Header, canonRetryable)
	}
	return cl
}
