// Package dashboard serves the admin dashboard: the page at / (alias
// /services) showing, per router, the request rate, success rate and
// latency percentiles over time, and client and service tables. The page
// polls admin/metrics.json?tree=1 and draws its own charts; its assets
// are embedded, so it works offline.
//
// Mount it on the admin mux with Mount, or route "/", "/services" and
// "/files/dashboard/" to Handler. The page links to /delegator (served by
// the admin server) and /requests (io.l5d.recentRequests).
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// AssetPrefix is the path under which the page's script and style are served.
const AssetPrefix = "/files/dashboard/"

// Handler serves the dashboard page at "/" and "/services" (an optional
// ?router=<label> shows one router; ?interval=<ms> sets the poll period)
// and its assets under AssetPrefix. Other paths get 404, so Handler may be
// mounted as the admin mux's catch-all.
func Handler() http.Handler {
	files, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	static := http.StripPrefix(strings.TrimSuffix(AssetPrefix, "/"), http.FileServer(http.FS(files)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch p := r.URL.Path; {
		case p == "/" || p == "/services":
			page, err := fs.ReadFile(files, "index.html")
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(page)
		case strings.HasPrefix(p, AssetPrefix) && path.Ext(p) != "" && path.Base(p) != "index.html":
			static.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// Mount registers the dashboard on mux at "/{$}", "/services" and
// AssetPrefix.
func Mount(mux *http.ServeMux) {
	h := Handler()
	mux.Handle("/{$}", h)
	mux.Handle("/services", h)
	mux.Handle(AssetPrefix, h)
}
