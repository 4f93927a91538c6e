package admin

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// delegateTimeout bounds one /delegator.json explanation, as in Linkerd.
const delegateTimeout = 2 * time.Second

// systemOnly explains names for an unknown namespace: the /$/ namers only.
var systemOnly = naming.NewInterpreter(nil)

type delegateRequest struct {
	Namespace string `json:"namespace"`
	Dtab      string `json:"dtab"`
	Path      string `json:"path"`
}

// delegatorJSON explains a delegation (headers-admin.md §5.1). The
// router's base dtab is not added: the playground sends it in `dtab`.
func (s *Server) delegatorJSON(w http.ResponseWriter, r *http.Request) {
	var q delegateRequest
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		v := r.URL.Query()
		q = delegateRequest{Namespace: v.Get("namespace"), Dtab: v.Get("dtab"), Path: v.Get("path")}
	case http.MethodPost:
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			http.Error(w, "POST /delegator.json needs Content-Type: application/json", http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || json.Unmarshal(body, &q) != nil {
			http.Error(w, "Malformed delegation request: "+string(body), http.StatusBadRequest)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if q.Path == "" {
		http.Error(w, "missing path parameter", http.StatusBadRequest)
		return
	}
	path, err := dtab.ParsePath(q.Path)
	if err != nil {
		http.Error(w, "Invalid path: "+err.Error(), http.StatusBadRequest)
		return
	}
	d, err := dtab.Parse(q.Dtab)
	if err != nil {
		http.Error(w, "Invalid dtab: "+err.Error(), http.StatusBadRequest)
		return
	}
	var interp naming.Interpreter = systemOnly
	for _, rt := range s.p.Routers {
		if rt.Label == q.Namespace {
			interp = rt.Interpreter
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), delegateTimeout)
	defer cancel()
	n, err := naming.Delegate(ctx, interp, d, path)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		http.Error(w, "Request timed out.", http.StatusServiceUnavailable)
		return
	case errors.Is(err, naming.ErrCannotExplain):
		http.Error(w, err.Error(), http.StatusNotImplemented)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(naming.MarshalDelegateJSON(n))
}

//go:embed delegator.html
var pages embed.FS

var delegatorTmpl = template.Must(template.ParseFS(pages, "delegator.html"))

type delegatorRouter struct {
	Label string
	Dtab  string
	// Live is the dtab of an interpreter that reads it from a live source
	// (io.l5d.fs, io.l5d.k8s.configMap, io.l5d.consul.interpreter); the
	// interpreter applies it before the dtab it is given.
	Live string
}

// liveDtabber is implemented by interpreters whose own dtab comes from a
// live source.
type liveDtabber interface {
	LiveDtab() (dtab.Dtab, bool)
}

// delegatorPage is the dtab playground: pick a router, edit its dtab, type
// a path, see the delegation tree. Plain HTML and JS, no external assets.
func (s *Server) delegatorPage(w http.ResponseWriter, r *http.Request) {
	var rs []delegatorRouter
	for _, rt := range s.p.Routers {
		r := delegatorRouter{Label: rt.Label, Dtab: prettyDtab(rt.Dtab)}
		if l, ok := rt.Interpreter.(liveDtabber); ok {
			if d, ok := l.LiveDtab(); ok {
				r.Live = prettyDtab(d)
			}
		}
		rs = append(rs, r)
	}
	selected := r.URL.Query().Get("router")
	if selected == "" && len(rs) > 0 {
		selected = rs[0].Label
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := delegatorTmpl.Execute(w, map[string]any{"Routers": rs, "Selected": selected}); err != nil {
		s.p.Logger.Warn("rendering /delegator", "err", err)
	}
}

// prettyDtab prints one dentry per line.
func prettyDtab(d dtab.Dtab) string {
	var out string
	for _, de := range d {
		out += de.Prefix.String() + " => " + dtab.ShowTree(de.Dst) + ";\n"
	}
	return out
}
