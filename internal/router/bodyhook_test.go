package router

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/naming"
)

// hookBody is a response body that implements BodyEndHook.
type hookBody struct {
	io.Reader
	done   func(bool)
	failed bool
	hooked int
}

func (b *hookBody) Close() error { return nil }
func (b *hookBody) OnEnd(done func(bool), failed bool) bool {
	b.hooked++
	b.done, b.failed = done, failed
	return true
}

type hookTransport struct{ status int }

func (t hookTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: t.status, Header: http.Header{}, Body: &hookBody{Reader: strings.NewReader("x")}}, nil
}
func (hookTransport) CloseIdleConnections() {}

// A body that reports its own end is handed the balancer's completion,
// with the failure the status implies, and is not wrapped.
func TestBodyEndHookReplacesWrapper(t *testing.T) {
	for _, status := range []int{200, 503} {
		f := newFixture(t, Params{}, map[string][]naming.Address{"a": {{Host: "127.0.0.1", Port: 1}}})
		f.r.p.NewTransport = func(string) Transport { return hookTransport{status} }
		resp, err := get(t, f.r, "a", nil)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("status %d: %v", status, err)
		}
		hb, ok := resp.Body.(*hookBody)
		if !ok {
			t.Fatalf("status %d: body is a %T, want the transport's own body, unwrapped", status, resp.Body)
		}
		if hb.hooked != 1 || hb.done == nil {
			t.Fatalf("status %d: OnEnd called %d times", status, hb.hooked)
		}
		if want := status >= 500; hb.failed != want {
			t.Errorf("status %d: hooked with failed=%v, want %v", status, hb.failed, want)
		}
		hb.done(hb.failed) // releases the balancer's load; must not panic
	}
}
