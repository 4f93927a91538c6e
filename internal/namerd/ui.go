package namerd

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/storage"
)

//go:embed ui
var uiFiles embed.FS

var pageTmpl = template.Must(template.ParseFS(uiFiles, "ui/index.html"))

// UI is namerd's admin web page (spec/headers-admin.md §5.3): "/" lists the
// namespaces with their dtabs, "/dtab/<ns>" shows one; both carry a
// playground that explains a path through a namespace's dtab (editable in
// the page) with /dtab/delegator.json. Assets are embedded; nothing is
// loaded from elsewhere. Edits in the page change nothing in storage, as
// in namerd.
type UI struct {
	store  storage.Store
	log    *slog.Logger
	assets http.Handler
}

// NewUI returns the page handler, mounted at "/" of the admin server.
func NewUI(store storage.Store, log *slog.Logger) *UI {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, _ := fs.Sub(uiFiles, "ui")
	return &UI{store: store, log: log, assets: http.StripPrefix("/files/namerd/", http.FileServerFS(sub))}
}

type pageNamespace struct {
	Name    string
	Version string
	Lines   []string // one dentry per line
	Text    string   // the dtab as playground input
	Link    string
}

// ServeHTTP implements http.Handler.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/files/namerd/"):
		u.assets.ServeHTTP(w, r)
	case r.URL.Path == "/":
		u.page(w, r, "")
	case strings.HasPrefix(r.URL.Path, "/dtab/") && len(r.URL.Path) > len("/dtab/"):
		u.page(w, r, strings.TrimPrefix(r.URL.Path, "/dtab/"))
	default:
		http.NotFound(w, r)
	}
}

func (u *UI) page(w http.ResponseWriter, r *http.Request, only string) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	names := []string{only}
	if only == "" {
		var err error
		if names, err = u.store.List(ctx); err != nil {
			http.Error(w, "cannot list dtab namespaces: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	var nss []pageNamespace
	for _, ns := range names {
		v, err := u.store.Get(ctx, ns)
		switch {
		case errors.Is(err, storage.ErrNotFound) && only != "":
			http.Error(w, "no dtab namespace "+only, http.StatusNotFound)
			return
		case errors.Is(err, storage.ErrNotFound):
			continue // deleted since List
		case err != nil:
			http.Error(w, "cannot read dtab namespace "+ns+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		nss = append(nss, pageNamespace{
			Name:    ns,
			Version: v.Version.String(),
			Lines:   dentryLines(v.Dtab),
			Text:    strings.Join(dentryLines(v.Dtab), "\n"),
			Link:    "/dtab/" + url.PathEscape(ns),
		})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, map[string]any{"Namespaces": nss, "Only": only}); err != nil {
		u.log.Warn("rendering the namerd page", "err", err)
	}
}

func dentryLines(d dtab.Dtab) []string {
	out := make([]string, len(d))
	for i, e := range d {
		out[i] = e.Prefix.String() + " => " + dtab.ShowTree(e.Dst) + ";"
	}
	return out
}

// DelegatorHandler serves namerd's /dtab/delegator.json: Linkerd's
// /delegator.json, resolving against namerd's namers. It explains with
// exactly the `dtab` it is given (the page sends the namespace's dtab);
// stored dtabs are not read.
func DelegatorHandler(c *Controller) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.delegateQuery(w, r, false)
	})
}
