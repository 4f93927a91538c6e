package tracing

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openzipkin/zipkin-go/reporter/recorder"
)

type rwc struct {
	io.Reader
	io.Writer
}

func (rwc) Close() error { return nil }

// A 101 response keeps its io.ReadWriteCloser body (the upgraded stream
// the edge copies both ways), and its client span ends with the
// handshake, sampled or not.
func TestClientKeepsUpgradedStream(t *testing.T) {
	for _, rate := range []float64{0, 1} {
		rec := recorder.NewReporter()
		tr, err := New(Options{Router: "r", Reporter: rec, SampleRate: rate})
		if err != nil {
			t.Fatal(err)
		}
		var written strings.Builder
		rt := tr.Client(roundTripper(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusSwitchingProtocols, Header: http.Header{},
				Body: rwc{strings.NewReader("from backend"), &written}}, nil
		}))
		req, _ := http.NewRequest("GET", "http://127.0.0.1:1/ws", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := resp.Body.(io.ReadWriteCloser)
		if !ok {
			t.Fatalf("rate %v: 101 body is %T, not an io.ReadWriteCloser", rate, resp.Body)
		}
		io.WriteString(w, "to backend")
		if written.String() != "to backend" {
			t.Errorf("rate %v: backend got %q", rate, written.String())
		}
		if n := len(rec.Flush()); (rate == 1 && n != 1) || (rate == 0 && n != 0) {
			t.Errorf("rate %v: %d spans recorded at the handshake", rate, n)
		}
	}
}
