package routerd

import (
	"sort"
	"strings"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// enumerator is implemented by namers that list the names they hold
// (io.l5d.fs, io.l5d.k8s), as ids relative to their prefix.
type enumerator interface {
	BoundNames() watch.Value[[]dtab.Path]
}

// clientStateEntry is one bound name on /client_state.json.
type clientStateEntry struct {
	Router    string                 `json:"router"`
	State     string                 `json:"state"`
	Addresses []string               `json:"addresses"`
	Endpoints []router.EndpointState `json:"endpoints"`
}

// mountStatePages registers the optional state pages (spec
// headers-admin.md §5.1): /bound-names.json, /client_state.json,
// /namer_state/<prefix>.json for every namer that reports its state and
// /<router>/interpreter_state/<kind>/<name>.json for every interpreter
// that does.
func mountStatePages(adm *admin.Server, rts []*router.Router, namers []naming.MountedNamer) {
	adm.Handle("/bound-names.json", admin.JSONState(func() any { return boundNames(rts, namers) }))
	adm.Handle("/client_state.json", admin.JSONState(func() any { return clientStates(rts) }))
	for _, m := range namers {
		if sr, ok := m.Namer.(naming.StateReporter); ok {
			// /#/io.l5d.fs → /namer_state/io.l5d.fs.json
			name := strings.TrimPrefix(m.Prefix.String(), "/#/")
			adm.Handle("/namer_state/"+name+".json", admin.JSONState(sr.State))
		}
	}
	mountInterpreterStatePages(adm, rts)
}

// boundNames is the sorted union of the names the enumerating namers hold
// (as full ids, /#/io.l5d.fs/hello) and the ids in the routers' bound
// tiers.
func boundNames(rts []*router.Router, namers []naming.MountedNamer) []string {
	set := map[string]bool{}
	for _, m := range namers {
		if e, ok := m.Namer.(enumerator); ok {
			for _, p := range e.BoundNames().Get() {
				set[append(append(dtab.Path{}, m.Prefix...), p...).String()] = true
			}
		}
	}
	for _, rt := range rts {
		for _, id := range rt.BoundNames() {
			set[id] = true
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// clientStates maps each bound id to its addresses and balancer endpoints.
// An id bound by several routers is keyed "<router>:<id>" after the first.
func clientStates(rts []*router.Router) map[string]clientStateEntry {
	out := map[string]clientStateEntry{}
	for _, rt := range rts {
		for _, cs := range rt.ClientStates() {
			key := cs.ID
			if _, dup := out[key]; dup {
				key = rt.Label() + ":" + cs.ID
			}
			out[key] = clientStateEntry{Router: rt.Label(), State: cs.State, Addresses: cs.Addresses, Endpoints: cs.Endpoints}
		}
	}
	return out
}
