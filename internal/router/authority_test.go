package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/linnet-mesh/linnet/internal/naming"
)

// An address whose metadata carries "authority" (consul setHost,
// namerd) gets that Host; other addresses keep the caller's
// (headers-admin.md §1, outbound Host row).
func TestAuthorityMetadataSetsHost(t *testing.T) {
	hosts := make(chan string, 2)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts <- r.Host
		io.WriteString(w, "ok")
	}))
	defer be.Close()
	plain := address(t, be.URL)
	withAuth := plain
	withAuth.Meta = map[string]any{MetaAuthority: "app.service.consul"}
	f := newFixture(t, Params{}, map[string][]naming.Address{"auth": {withAuth}, "plain": {plain}})
	for _, c := range []struct{ name, want string }{{"auth", "app.service.consul"}, {"plain", "plain"}} {
		resp, err := get(t, f.r, c.name, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		resp.Body.Close()
		if got := <-hosts; got != c.want {
			t.Errorf("%s: endpoint saw Host %q; want %q", c.name, got, c.want)
		}
	}
}
