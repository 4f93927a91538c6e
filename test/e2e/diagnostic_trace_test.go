package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestDiagnosticTrace sends TRACE requests with l5d-add-context through
// two routers of one linnet process (outer → inner → backend) and checks
// that each router appends its routing block to the response and
// decrements Max-Forwards, as Linkerd 1.x's DiagnosticTracer does.
func TestDiagnosticTrace(t *testing.T) {
	t.Parallel()
	_, svcPort := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend: %s max-forwards=%s\n", r.Method, r.Header.Get("Max-Forwards"))
	}))
	admin, outer, inner, edge := freePort(t), freePort(t), freePort(t), freePort(t)
	startRouter(t, fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: http
  label: outer
  dtab: /svc => /$/inet/127.0.0.1/%d;
  servers: [{ip: 127.0.0.1, port: %d}]
- protocol: http
  label: inner
  dtab: /svc => /$/inet/127.0.0.1/%d;
  servers: [{ip: 127.0.0.1, port: %d}, {ip: 127.0.0.1, port: %d, clearContext: true}]
`, admin, inner, outer, svcPort, inner, edge), admin)

	block := func(label string, port int) string {
		return fmt.Sprintf(`--- Router: %s ---
request duration: \d+ ms
service name: /svc/web
client name: /\$/inet/127\.0\.0\.1/%d
addresses: \[127\.0\.0\.1:%d\]
selected address: 127\.0\.0\.1:%d
dtab resolution:
  /svc/web
  /\$/inet/127\.0\.0\.1/%d/web \(/svc=>/\$/inet/127\.0\.0\.1/%d\)
(  .*\n)*`, regexp.QuoteMeta(label), port, port, port, port, port)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", outer)

	t.Run("both routers add their block", func(t *testing.T) {
		st, hdr, body := send(t, http.MethodTrace, url, "web", map[string]string{"l5d-add-context": "true", "Max-Forwards": "5"}, nil)
		if st != http.StatusOK {
			t.Fatalf("status %d: %s", st, body)
		}
		re := regexp.MustCompile(`^backend: TRACE max-forwards=3\n\n` + block("inner", svcPort) + `\n` + block("outer", inner) + `$`)
		if !re.MatchString(body) {
			t.Errorf("body:\n%s\nwant it to match\n%s", body, re)
		}
		if cl := hdr.Get("Content-Length"); cl != fmt.Sprint(len(body)) {
			t.Errorf("Content-Length %q for a %d-byte body", cl, len(body))
		}
	})

	t.Run("Max-Forwards 0 is answered by the first router", func(t *testing.T) {
		st, _, body := send(t, http.MethodTrace, url, "web", map[string]string{"l5d-add-context": "true", "Max-Forwards": "0"}, nil)
		if st != http.StatusOK || strings.Contains(body, "backend") || strings.Contains(body, "Router: inner") {
			t.Fatalf("status %d, body:\n%s\nwant 200 from the outer router alone", st, body)
		}
		if !strings.HasPrefix(body, "\n\n--- Router: outer ---\n") || !strings.Contains(body, "client name: /$/inet/127.0.0.1/") {
			t.Errorf("body:\n%q\nwant the outer router's block", body)
		}
	})

	t.Run("Max-Forwards 1 stops at the second router", func(t *testing.T) {
		st, _, body := send(t, http.MethodTrace, url, "web", map[string]string{"l5d-add-context": "true", "Max-Forwards": "1"}, nil)
		if st != http.StatusOK || strings.Contains(body, "backend") {
			t.Fatalf("status %d, body:\n%s", st, body)
		}
		if i, j := strings.Index(body, "--- Router: inner ---"), strings.Index(body, "--- Router: outer ---"); i < 0 || j < i {
			t.Errorf("body:\n%s\nwant the inner block, then the outer one", body)
		}
	})

	t.Run("a clearContext server drops l5d-add-context", func(t *testing.T) {
		st, _, body := send(t, http.MethodTrace, fmt.Sprintf("http://127.0.0.1:%d/", edge), "web",
			map[string]string{"l5d-add-context": "true", "Max-Forwards": "3"}, nil)
		if st != http.StatusOK || body != "backend: TRACE max-forwards=2\n" {
			t.Errorf("status %d, body %q; want the backend's answer, Max-Forwards decremented, no router block", st, body)
		}
	})

	t.Run("bad Max-Forwards", func(t *testing.T) {
		st, _, body := send(t, http.MethodTrace, url, "web", map[string]string{"Max-Forwards": "many"}, nil)
		if st != http.StatusBadRequest || body != "Invalid value for Max-Forwards header" {
			t.Errorf("status %d, body %q; want 400 Invalid value for Max-Forwards header", st, body)
		}
	})

	t.Run("plain TRACE is routed like any request", func(t *testing.T) {
		st, _, body := send(t, http.MethodTrace, url, "web", nil, nil)
		if st != http.StatusOK || body != "backend: TRACE max-forwards=\n" {
			t.Errorf("status %d, body %q; want the backend's answer untouched", st, body)
		}
	})
}
