package routerd

import (
	"strings"
	"testing"
)

func TestEdgeWarnings(t *testing.T) {
	c, err := LoadConfig([]byte(`
routers:
- protocol: http
  label: edge
  dtab: /svc => /$/inet/127.1/8080
  servers:
  - port: 4140
  - port: 4141
    ip: 0.0.0.0
  - port: 4142
    ip: 0.0.0.0
    clearContext: true
  - port: 4143
    ip: ::1
`))
	if err != nil {
		t.Fatal(err)
	}
	got := EdgeWarnings(c)
	if len(got) != 1 {
		t.Fatalf("got %d warnings, want 1 (only the open server without clearContext): %q", len(got), got)
	}
	for _, want := range []string{"routers[0].servers[1]", `"edge"`, "0.0.0.0:4141", "clearContext: true"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("warning %q does not mention %q", got[0], want)
		}
	}
}
