package namerd

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/linnet-mesh/linnet/internal/namerd/api"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// DelegateTimeout bounds a delegate request (spec/namerd-api.md §3.4).
const DelegateTimeout = 2 * time.Second

// Controller is the io.l5d.httpController handler.
type Controller struct {
	store  *liveStore
	interp *naming.DefaultInterpreter
	namers []naming.MountedNamer
	log    *slog.Logger

	requests *telemetry.Counter
	streams  *telemetry.Counter
	// liveReads counts dtab reads answered from a watch's copy because
	// the store could not answer (see currentDtab).
	liveReads *telemetry.Counter
	open      atomic.Int64 // streams being served

	// liveRead and coldRead bound a dtab read from the store with and
	// without a live copy to fall back on (see currentDtab).
	liveRead, coldRead time.Duration
}

// NewController returns the HTTP API over store, resolving names with
// namers (and the /$/ system namers). scope receives the interface's
// metrics; log may be nil.
func NewController(store storage.Store, namers []naming.MountedNamer, scope telemetry.Scope, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{
		store:     trackWatches(store),
		liveRead:  liveReadBudget,
		coldRead:  coldReadBudget,
		interp:    naming.NewInterpreter(namers),
		namers:    namers,
		log:       log,
		requests:  scope.Counter("requests"),
		streams:   scope.Counter("streams"),
		liveReads: scope.Counter("dtab_reads_from_watch"),
	}
	scope.Gauge("open_streams", func() float64 { return float64(c.open.Load()) })
	return c
}

// streaming counts a watch response for the metrics; call the result when
// it ends.
func (c *Controller) streaming() (done func()) {
	c.streams.Inc()
	c.open.Add(1)
	return func() { c.open.Add(-1) }
}

// Interpreter returns the interpreter the controller binds with.
func (c *Controller) Interpreter() *naming.DefaultInterpreter { return c.interp }

// ServeHTTP routes a request (spec/namerd-api.md §1). Anything unknown is a
// 404 with an empty body.
func (c *Controller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.requests.Inc()
	path := r.URL.EscapedPath()
	if path == api.DtabsPath || path == api.DtabsPath+"/" {
		c.listDtabs(w, r)
		return
	}
	if path == api.DelegatePath {
		c.delegateNoNamespace(w, r)
		return
	}
	if path == api.BoundNamesPath {
		c.boundNames(w, r)
		return
	}
	for _, route := range []struct {
		prefix string
		serve  func(http.ResponseWriter, *http.Request, string)
	}{
		{api.DtabsPath + "/", c.dtab},
		{api.BindPath + "/", c.bind},
		{api.AddrPath + "/", c.addr},
		{api.ResolvePath + "/", c.resolve},
		{api.DelegatePath + "/", c.delegate},
	} {
		if raw, ok := strings.CutPrefix(path, route.prefix); ok && raw != "" {
			ns, err := url.PathUnescape(raw)
			if err != nil {
				plain(w, http.StatusBadRequest, "Invalid namespace: "+err.Error())
				return
			}
			route.serve(w, r, ns)
			return
		}
	}
	w.WriteHeader(http.StatusNotFound)
}

// watching reports whether the request asks for a stream (spec §1: "1", "t"
// or "true", case-insensitively).
func watching(r *http.Request) bool {
	switch strings.ToLower(r.URL.Query().Get("watch")) {
	case "1", "t", "true":
		return true
	}
	return false
}
