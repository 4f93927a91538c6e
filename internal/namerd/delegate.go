package namerd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/api"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
)

// delegate serves /api/1/delegate/<ns> (spec §3.4): an explanation of path
// through the namespace dtab followed by the `dtab` parameter. `watch` is
// ignored; the body has no trailing newline.
func (c *Controller) delegate(w http.ResponseWriter, r *http.Request, ns string) {
	path, ok := queryPath(w, r)
	if !ok {
		return
	}
	extra, ok := queryDtab(w, r)
	if !ok {
		return
	}
	c.explain(w, r, ns, true, extra, path)
}

// delegateNoNamespace serves /api/1/delegate (spec §3.5): GET with path,
// dtab and an optional namespace; or POST of
// {"namespace":…, "dtab":…, "path":…} as application/json.
func (c *Controller) delegateNoNamespace(w http.ResponseWriter, r *http.Request) {
	c.delegateQuery(w, r, true)
}

// delegateQuery is delegateNoNamespace; without useNamespace the namespace
// is ignored and exactly the given dtab is explained (the admin delegator).
func (c *Controller) delegateQuery(w http.ResponseWriter, r *http.Request, useNamespace bool) {
	var q struct {
		Namespace *string `json:"namespace"`
		Dtab      *string `json:"dtab"`
		Path      *string `json:"path"`
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		v := r.URL.Query()
		q.Path, q.Dtab = ptr(v.Get("path")), ptr(v.Get("dtab"))
		if v.Has("namespace") {
			q.Namespace = ptr(v.Get("namespace"))
		}
		if !v.Has("path") {
			plain(w, http.StatusBadRequest, "Missing required parameter: path")
			return
		}
	case http.MethodPost:
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != api.MediaJSON {
			plain(w, http.StatusUnsupportedMediaType, "POST "+api.DelegatePath+" needs Content-Type: application/json")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxDtabBody))
		if err != nil || json.Unmarshal(body, &q) != nil || q.Dtab == nil || q.Path == nil {
			plain(w, http.StatusBadRequest, "Malformed delegation request: "+string(body))
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	path, err := dtab.ParsePath(*q.Path)
	if err != nil {
		plain(w, http.StatusBadRequest, "Invalid path: "+*q.Path+" / "+err.Error())
		return
	}
	extra, err := dtab.Parse(*q.Dtab)
	if err != nil {
		plain(w, http.StatusBadRequest, "Invalid dtab: "+err.Error())
		return
	}
	ns := ""
	if q.Namespace != nil {
		ns = *q.Namespace
	}
	c.explain(w, r, ns, useNamespace && q.Namespace != nil, extra, path)
}

func ptr(s string) *string { return &s }

// explain writes the delegation of path through (namespace dtab ++ extra),
// within DelegateTimeout.
func (c *Controller) explain(w http.ResponseWriter, r *http.Request, ns string, useNamespace bool, extra dtab.Dtab, path dtab.Path) {
	ctx, cancel := context.WithTimeout(r.Context(), DelegateTimeout)
	defer cancel()
	body, err := c.Explain(ctx, ns, useNamespace, extra, path)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		plain(w, http.StatusServiceUnavailable, "Request timed out.")
	case errors.Is(err, naming.ErrCannotExplain):
		plain(w, http.StatusNotImplemented, "Name Interpreter for "+ns+" cannot show delegations")
	case err != nil:
		plain(w, http.StatusInternalServerError, err.Error())
	default:
		w.Header().Set("Content-Type", api.MediaJSON)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
}

// Explain returns the delegate-tree JSON of path through the dtab of ns
// (when useNamespace; an absent namespace is an empty dtab) followed by
// extra. The namerd admin page uses it too.
func (c *Controller) Explain(ctx context.Context, ns string, useNamespace bool, extra dtab.Dtab, path dtab.Path) ([]byte, error) {
	var d dtab.Dtab
	if useNamespace {
		v, err := c.store.Get(ctx, ns)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			d = v.Dtab
		}
	}
	n, err := naming.Delegate(ctx, c.interp, d.Concat(extra), path)
	if err != nil {
		return nil, err
	}
	return naming.MarshalDelegateJSON(n), nil
}
