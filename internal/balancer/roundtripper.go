package balancer

import (
	"io"
	"net/http"
	"sync"
)

// FailureFunc classifies the outcome of one attempt for the balancer's
// load and failure accrual: true when it failed. The router passes the
// service's response classifier (middleware.Classifier.Failure); nil means
// "an error or a 5xx status".
type FailureFunc func(req *http.Request, resp *http.Response, err error) bool

// DefaultFailure counts transport errors and 5xx responses as failures.
func DefaultFailure(_ *http.Request, resp *http.Response, err error) bool {
	return err != nil || resp.StatusCode >= 500
}

// NewRoundTripper sends each request to an endpoint picked from b through
// next (typically an http.Transport shared by the client): the request's
// URL host becomes the endpoint's host:port, its Host header is kept. The
// endpoint's done is called when the response body is closed or fully
// read (so pending counts streaming responses), or at once on error.
// Pick errors (ErrNoEndpoints) are returned unchanged.
func NewRoundTripper(b Balancer, next http.RoundTripper, failed FailureFunc) http.RoundTripper {
	if failed == nil {
		failed = DefaultFailure
	}
	return &roundTripper{b: b, next: next, failed: failed}
}

type roundTripper struct {
	b      Balancer
	next   http.RoundTripper
	failed FailureFunc
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	ep, done, err := rt.b.Pick()
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // RoundTripper contract: always close the body
		}
		return nil, err
	}
	out := new(http.Request)
	*out = *req
	u := *req.URL
	u.Host = ep.Key
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	out.URL = &u
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	resp, err := rt.next.RoundTrip(out)
	if err != nil {
		done(true)
		return nil, err
	}
	f := rt.failed(req, resp, nil)
	if resp.Body == nil || resp.Body == http.NoBody {
		done(f)
		return resp, nil
	}
	resp.Body = &doneBody{ReadCloser: resp.Body, done: done, failed: f}
	return resp, nil
}

// doneBody calls done once, at EOF, on a read error (a failure) or at
// Close, whichever comes first.
type doneBody struct {
	io.ReadCloser
	once   sync.Once
	done   func(bool)
	failed bool
}

func (b *doneBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		f := b.failed || err != io.EOF
		b.once.Do(func() { b.done(f) })
	}
	return n, err
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.done(b.failed) })
	return err
}
