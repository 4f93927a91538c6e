package namerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/api"
	"github.com/linnet-mesh/linnet/internal/storage"
)

// maxDtabBody bounds a dtab upload.
const maxDtabBody = 4 << 20

// listDtabs serves any method on /api/1/dtabs (spec §2.2).
func (c *Controller) listDtabs(w http.ResponseWriter, r *http.Request) {
	render := func(names []string) ([]byte, bool) {
		if names == nil {
			names = []string{}
		}
		b, err := api.Marshal(names)
		return b, err == nil
	}
	if watching(r) {
		defer c.streaming()()
		d := newDocWriter(w)
		d.start(api.MediaJSON)
		streamValue(r.Context(), d, c.store.ObserveList(), render)
		return
	}
	names, err := c.store.List(r.Context())
	if err != nil {
		c.storageError(w, r, "", err)
		return
	}
	b, _ := render(names)
	writeBody(w, http.StatusOK, api.MediaJSON, b)
}

// dtab serves /api/1/dtabs/<ns> (spec §2.3-2.7).
func (c *Controller) dtab(w http.ResponseWriter, r *http.Request, ns string) {
	switch r.Method {
	case http.MethodGet:
		c.getDtab(w, r, ns)
	case http.MethodHead:
		v, err := c.currentDtab(r.Context(), ns)
		if err != nil {
			c.storageError(w, r, ns, err)
			return
		}
		w.Header().Set("ETag", v.Version.String())
		w.WriteHeader(http.StatusOK)
	case http.MethodPost:
		d, ok := c.readDtab(w, r, false)
		if !ok {
			return
		}
		if err := c.store.Create(r.Context(), ns, d); err != nil {
			c.storageError(w, r, ns, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		d, ok := c.readDtab(w, r, true)
		if !ok {
			return
		}
		var err error
		if tok := r.Header.Get("If-Match"); tok != "" {
			err = c.update(r.Context(), ns, d, tok)
		} else {
			err = c.store.Put(r.Context(), ns, d)
		}
		if err != nil {
			c.storageError(w, r, ns, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		if err := c.store.Delete(r.Context(), ns); err != nil {
			c.storageError(w, r, ns, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// update is a conditional write. A token that does not decode cannot be the
// current version: that is a 412 if the namespace exists, a 404 if not.
func (c *Controller) update(ctx context.Context, ns string, d dtab.Dtab, tok string) error {
	v, err := storage.ParseVersion(tok)
	if err != nil {
		if _, gerr := c.store.Get(ctx, ns); gerr != nil {
			return gerr
		}
		return storage.ErrVersionMismatch
	}
	return c.store.Update(ctx, ns, d, v)
}

func (c *Controller) getDtab(w http.ResponseWriter, r *http.Request, ns string) {
	media := negotiate(r.Header.Values("Accept"))
	render := func(v *storage.VersionedDtab) []byte {
		if media == api.MediaJSON {
			b, _ := api.Marshal(api.DentriesOf(v.Dtab))
			return b
		}
		return []byte(v.Dtab.String())
	}
	if watching(r) {
		defer c.streaming()()
		d := newDocWriter(w)
		d.start(media)
		streamValue(r.Context(), d, c.store.Observe(ns), func(o storage.Observation) ([]byte, bool) {
			if o == nil {
				return nil, false // absent: write nothing until it appears
			}
			return render(o), true
		})
		return
	}
	v, err := c.currentDtab(r.Context(), ns)
	if err != nil {
		c.storageError(w, r, ns, err)
		return
	}
	w.Header().Set("ETag", v.Version.String())
	writeBody(w, http.StatusOK, media, render(&v))
}

// negotiate picks the dtab representation from Accept headers (spec §2.3):
// the first listed of application/json, application/dtab and text/plain,
// parameters ignored; application/json when none matches.
func negotiate(accept []string) string {
	for _, h := range accept {
		for part := range strings.SplitSeq(h, ",") {
			mt, _, _ := strings.Cut(part, ";")
			switch mt = strings.ToLower(strings.TrimSpace(mt)); mt {
			case api.MediaJSON, api.MediaDtab, api.MediaText:
				return mt
			}
		}
	}
	return api.MediaJSON
}

// readDtab decodes a request body as a dtab according to its Content-Type.
// Errors answer 400 as namerd does (spec §2.5, §2.6): for PUT, an
// unsupported type and a dtab parse error carry a message.
func (c *Controller) readDtab(w http.ResponseWriter, r *http.Request, put bool) (dtab.Dtab, bool) {
	ct := r.Header.Get("Content-Type")
	media, _, err := mime.ParseMediaType(ct)
	if err != nil {
		media = ""
	}
	switch media {
	case api.MediaJSON, api.MediaDtab, api.MediaText:
	default:
		if put {
			plain(w, http.StatusBadRequest, "Invalid Content-Type \""+ct+"\". ")
		} else {
			w.WriteHeader(http.StatusBadRequest)
		}
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDtabBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			plain(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("dtab larger than %d bytes", maxDtabBody))
		} else {
			w.WriteHeader(http.StatusBadRequest)
		}
		return nil, false
	}
	if media == api.MediaJSON {
		d, err := api.ParseDentries(body)
		switch {
		case errors.Is(err, api.ErrNullDentry):
			plain(w, http.StatusBadRequest, "The dtab contains invalid dentries: "+string(body))
			return nil, false
		case err != nil:
			w.WriteHeader(http.StatusBadRequest)
			return nil, false
		}
		return d, true
	}
	d, err := dtab.Parse(string(body))
	if err != nil {
		if put {
			plain(w, http.StatusBadRequest, err.Error())
		} else {
			w.WriteHeader(http.StatusBadRequest)
		}
		return nil, false
	}
	return d, true
}

// storageError maps store errors to statuses (spec §2).
func (c *Controller) storageError(w http.ResponseWriter, r *http.Request, ns string, err error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		w.WriteHeader(http.StatusNotFound)
	case errors.Is(err, storage.ErrExists):
		w.WriteHeader(http.StatusConflict)
	case errors.Is(err, storage.ErrVersionMismatch):
		w.WriteHeader(http.StatusPreconditionFailed)
	case errors.Is(err, storage.ErrInvalidNamespace):
		plain(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, storage.ErrForbidden):
		// The storage's reason, which namerd's log alone used to show.
		c.log.Warn("dtab storage refused the request", "method", r.Method, "namespace", ns, "err", err)
		plain(w, http.StatusForbidden, "forbidden: "+subject(ns)+err.Error())
	case errors.As(err, new(*UnavailableError)):
		c.log.Warn("dtab storage unavailable", "method", r.Method, "namespace", ns, "err", err)
		w.Header().Set("Retry-After", "1")
		plain(w, http.StatusServiceUnavailable, err.Error())
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		c.log.Error("dtab storage failed", "method", r.Method, "namespace", ns, "err", err)
		plain(w, http.StatusInternalServerError, subject(ns)+err.Error())
	}
}

// subject names what a storage error is about in a response body.
func subject(ns string) string {
	if ns == "" {
		return "dtab list: "
	}
	return fmt.Sprintf("dtab %q: ", ns)
}

// writeBody writes a one-shot document followed by "\n".
func writeBody(w http.ResponseWriter, status int, contentType string, b []byte) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// plain answers with a plain-text body written exactly as given.
func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}
