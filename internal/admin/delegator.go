package admin

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"sync"
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
	// For an interpreter that follows namerd: RemoteFrom says where the
	// dtab comes from (namespace, address), and either Remote is the dtab
	// namerd holds (namerd applies it before the dtab the router sends)
	// or RemoteErr says why it could not be read.
	RemoteFrom, Remote, RemoteErr string
}

// liveDtabber is implemented by interpreters whose own dtab comes from a
// live source.
type liveDtabber interface {
	LiveDtab() (dtab.Dtab, bool)
}

// remoteDtabber is implemented by the interpreters that follow namerd
// (io.l5d.namerd, io.l5d.namerd.http, io.l5d.mesh). It is not folded into
// liveDtabber: that one is a local read that cannot fail, while namerd's
// dtab is a request that takes time and can fail, so it needs a context
// and an error.
type remoteDtabber interface {
	// RemoteDtab asks namerd for the dtab of the interpreter's namespace;
	// it returns by the time ctx ends.
	RemoteDtab(ctx context.Context) (dtab.Dtab, error)
	// RemoteDtabSource names that namespace and namerd's address (the
	// interpreter's dst).
	RemoteDtabSource() (namespace, addr string)
}

// remoteDtabTimeout bounds the wait for namerd when the page is built (as
// delegateTimeout does for /delegator.json).
const remoteDtabTimeout = 2 * time.Second

// delegatorPage is the dtab playground: pick a router, edit its dtab, type
// a path, see the delegation tree. Plain HTML and JS, no external assets.
func (s *Server) delegatorPage(w http.ResponseWriter, r *http.Request) {
	rs := make([]delegatorRouter, len(s.p.Routers))
	ctx, cancel := context.WithTimeout(r.Context(), remoteDtabTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, rt := range s.p.Routers {
		rs[i] = delegatorRouter{Label: rt.Label, Dtab: prettyDtab(rt.Dtab)}
		if l, ok := rt.Interpreter.(liveDtabber); ok {
			if d, ok := l.LiveDtab(); ok {
				rs[i].Live = prettyDtab(d)
			}
		}
		if rd, ok := rt.Interpreter.(remoteDtabber); ok {
			// Routers that follow namerd are asked at the same time, so
			// the page waits for namerd at most once.
			wg.Go(func() { rs[i].readRemote(ctx, rd) })
		}
	}
	wg.Wait()
	selected := r.URL.Query().Get("router")
	if selected == "" && len(rs) > 0 {
		selected = rs[0].Label
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := delegatorTmpl.Execute(w, map[string]any{"Routers": rs, "Selected": selected}); err != nil {
		s.p.Logger.Warn("rendering /delegator", "err", err)
	}
}

// readRemote fills the Remote fields from namerd.
func (r *delegatorRouter) readRemote(ctx context.Context, rd remoteDtabber) {
	ns, addr := rd.RemoteDtabSource()
	r.RemoteFrom = fmt.Sprintf("namespace %q", ns)
	if addr != "" {
		r.RemoteFrom += " at " + addr
	}
	d, err := rd.RemoteDtab(ctx)
	// A client may cut its connection at ctx's deadline (a socket
	// deadline) a moment before ctx itself reports it.
	deadline, _ := ctx.Deadline()
	switch {
	case err == nil:
		r.Remote = prettyDtab(d)
	case errors.Is(err, context.DeadlineExceeded):
		r.RemoteErr = fmt.Sprintf("namerd did not answer within %v", remoteDtabTimeout)
	case !time.Now().Before(deadline):
		r.RemoteErr = fmt.Sprintf("namerd did not answer within %v: %v", remoteDtabTimeout, err)
	default:
		r.RemoteErr = "cannot read the dtab from namerd: " + err.Error()
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
