package namerd

import (
	"net/http"
	"slices"
	"sync"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/api"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Enumerator is implemented by namers that can list the concrete names
// they know (io.l5d.fs, io.l5d.k8s): ids relative to the namer's prefix,
// e.g. ["default"] for /#/io.l5d.fs/default. It feeds
// /api/1/bound-names (spec/namerd-api.md §3.6).
type Enumerator interface {
	BoundNames() watch.Value[[]dtab.Path]
}

// boundNames serves /api/1/bound-names.
func (c *Controller) boundNames(w http.ResponseWriter, r *http.Request) {
	v := c.enumerated()
	render := func(names []string) ([]byte, bool) {
		b, err := api.Marshal(names)
		return b, err == nil
	}
	if watching(r) {
		defer c.streaming()()
		d := newDocWriter(w)
		d.start(api.MediaJSON)
		streamValue(r.Context(), d, v, render)
		return
	}
	b, _ := render(v.Get().Value)
	writeBody(w, http.StatusOK, api.MediaJSON, b)
}

// enumerated combines the names of every enumerating namer, as full ids
// (/#/<prefix>/<name>), sorted.
func (c *Controller) enumerated() watch.Value[watch.Activity[[]string]] {
	var parts []watch.Value[[]dtab.Path]
	var prefixes []dtab.Path
	for _, m := range c.namers {
		if e, ok := m.Namer.(Enumerator); ok {
			parts = append(parts, e.BoundNames())
			prefixes = append(prefixes, m.Prefix)
		}
	}
	return &combined{parts: parts, prefixes: prefixes}
}

// combined is the union of several enumerations; it is always Ok.
type combined struct {
	parts    []watch.Value[[]dtab.Path]
	prefixes []dtab.Path
}

func (x *combined) join(cur [][]dtab.Path) []string {
	out := []string{}
	for i, names := range cur {
		for _, n := range names {
			out = append(out, x.prefixes[i].Concat(n).String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (x *combined) Get() watch.Activity[[]string] {
	cur := make([][]dtab.Path, len(x.parts))
	for i, p := range x.parts {
		cur[i] = p.Get()
	}
	return watch.OkActivity(x.join(cur))
}

func (x *combined) Subscribe(f func(watch.Activity[[]string])) func() {
	var mu sync.Mutex
	cur := make([][]dtab.Path, len(x.parts))
	started := false
	cancels := make([]func(), len(x.parts))
	for i, p := range x.parts {
		cancels[i] = p.Subscribe(func(names []dtab.Path) {
			mu.Lock()
			defer mu.Unlock()
			cur[i] = names
			if started {
				f(watch.OkActivity(x.join(cur)))
			}
		})
	}
	mu.Lock()
	started = true
	f(watch.OkActivity(x.join(cur)))
	mu.Unlock()
	return func() {
		for _, c := range cancels {
			c()
		}
	}
}
