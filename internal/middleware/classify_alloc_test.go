package middleware

import (
	"net/http"
	"testing"
)

func TestClassifyCanonicalKeys(t *testing.T) {
	for k, want := range map[string]string{HeaderSuccessClass: canonSuccessClass, HeaderRetryable: canonRetryable} {
		if got := http.CanonicalHeaderKey(k); got != want {
			t.Errorf("CanonicalHeaderKey(%q) = %q, but Classify stores it as %q", k, got, want)
		}
	}
}

// TestClassifyAllocs pins what Classify adds to a response: the one-value
// slice of l5d-success-class, and nothing for the key (Header.Set with the
// lower-case name canonicalised it, allocating twice per response). It
// also checks that a stale l5d-retryable is removed and a nil header map
// is tolerated.
func TestClassifyAllocs(t *testing.T) {
	c, _ := NewClassifier(ClassifierRetryableRead5XX)
	req, _ := http.NewRequest("POST", "http://x/", nil)
	resp := &http.Response{StatusCode: 200, Header: http.Header{}}
	rt := Classify(c)(RoundTripperFunc(func(*http.Request) (*http.Response, error) { return resp, nil }))
	n := testing.AllocsPerRun(200, func() {
		resp.Header["L5d-Retryable"] = nil // stale, from a downstream
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 {
		t.Errorf("Classify: %v allocations per response, want at most 1", n)
	}
	if got := resp.Header.Get(HeaderSuccessClass); got != "1.0" {
		t.Errorf("%s = %q, want 1.0", HeaderSuccessClass, got)
	}
	if _, ok := resp.Header[http.CanonicalHeaderKey(HeaderRetryable)]; ok {
		t.Errorf("a stale %s survived a success", HeaderRetryable)
	}

	resp = &http.Response{StatusCode: 503} // no header map at all
	got, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Get(HeaderSuccessClass) != "0.0" || got.Header.Get(HeaderRetryable) != "" {
		t.Errorf("503 to a POST: headers %v, want l5d-success-class 0.0 and no l5d-retryable", got.Header)
	}
}
