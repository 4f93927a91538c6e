package k8s

import (
	"sort"
	"time"

	"github.com/linnet-mesh/linnet/internal/naming"
)

// NameState is one watched name on /namer_state/<prefix>.json.
type NameState struct {
	// State is bound, neg (no such Service, or no such port), pending
	// (the caches have not synced) or failed (the API server cannot be
	// read; Error says why).
	State     string   `json:"state"`
	Addresses []string `json:"addresses"`
	Error     string   `json:"error,omitempty"`
	// Subscribers counts the lookups and address watches holding the
	// name; Residuals the residual paths bound below it.
	Subscribers int      `json:"subscribers"`
	Residuals   []string `json:"residuals"`
	// LastStartedAt is when the name was first watched, LastUpdatedAt
	// when its answer last changed (absent: never since).
	LastStartedAt time.Time  `json:"lastStartedAt"`
	LastUpdatedAt *time.Time `json:"lastUpdatedAt,omitempty"`
	Updates       uint64     `json:"updates"`
}

// InformerState is the sync state of the Service and endpoint caches the
// namer reads.
type InformerState struct {
	// Synced is true once the caches hold a full listing.
	Synced bool `json:"synced"`
	// Error is why they have not synced yet (a failed list or watch).
	Error string `json:"error,omitempty"`
	// EndpointSlices tells which endpoint API is read (known once
	// synced).
	EndpointSlices *bool `json:"endpointSlices,omitempty"`
}

// State implements naming.StateReporter for /namer_state/<prefix>.json
// (io.l5d.k8s, io.l5d.k8s.ns, io.l5d.k8s.external): the names being
// watched, by id below the prefix (/<ns>/<port>/<svc>[/<label>], or
// /<port>/<svc>[/<label>] for .ns), with their answer, and the state of
// the informers behind them. Linkerd 1.x's page lists its per-namespace
// API watches instead; Linnet's namers share one set of informers per
// cluster, so the page shows those.
func (n *Namer) State() any {
	type doc struct {
		Prefix        string               `json:"prefix"`
		Namespace     string               `json:"namespace,omitempty"`
		LabelSelector string               `json:"labelSelector,omitempty"`
		Informers     InformerState        `json:"informers"`
		Names         map[string]NameState `json:"names"`
	}
	d := doc{Prefix: n.prefix.String(), Namespace: n.ns, LabelSelector: n.selector, Names: map[string]NameState{}}
	select {
	case <-n.cluster.EndpointsSynced():
		d.Informers.Synced = true
		s := n.cluster.UsesEndpointSlices() // decided before the sync
		d.Informers.EndpointSlices = &s
	default:
		if err := n.cluster.EndpointsError(); err != nil {
			d.Informers.Error = err.Error()
		}
	}
	n.mu.Lock()
	for _, e := range n.entries {
		a := e.last.addr()
		s := NameState{
			State: addrStateName(a.State), Addresses: []string{}, Subscribers: e.refs, Residuals: []string{},
			LastStartedAt: e.started.UTC(), Updates: e.updates,
		}
		if a.Err != nil {
			s.Error = a.Err.Error()
		}
		for _, x := range a.Addrs {
			s.Addresses = append(s.Addresses, x.HostPort())
		}
		for r := range e.bounds {
			s.Residuals = append(s.Residuals, r)
		}
		if !e.updated.IsZero() {
			u := e.updated.UTC()
			s.LastUpdatedAt = &u
		}
		d.Names[idPath(e.k, n.mode).String()] = s
	}
	n.mu.Unlock()
	for _, s := range d.Names {
		sort.Strings(s.Addresses)
		sort.Strings(s.Residuals)
	}
	return d
}

func addrStateName(s naming.AddrState) string {
	switch s {
	case naming.AddrBound:
		return "bound"
	case naming.AddrNeg:
		return "neg"
	case naming.AddrFailed:
		return "failed"
	}
	return "pending"
}

var _ naming.StateReporter = (*Namer)(nil)
