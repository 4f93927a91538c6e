package router

import (
	"sort"

	"github.com/linnet-mesh/linnet/internal/naming"
)

// ClientState is what the bound tier holds for one bound name, for the
// admin page /client_state.json.
type ClientState struct {
	// ID is the bound id, e.g. /#/io.l5d.fs/hello.
	ID string `json:"id"`
	// State is the address state: pending, bound, neg or failed.
	State string `json:"state"`
	// Addresses are the addresses the namer last published.
	Addresses []string `json:"addresses"`
	// Endpoints are the balancer's endpoints and their current state.
	Endpoints []EndpointState `json:"endpoints"`
}

// EndpointState is one load-balancer endpoint.
type EndpointState struct {
	Address string `json:"address"`
	// Available is false while failure accrual has ejected the endpoint.
	Available bool `json:"available"`
	Ejected   bool `json:"ejected"`
	// Load is the number of requests in flight.
	Load int64 `json:"load"`
}

// ClientStates returns a snapshot of the bound tier, sorted by id. Only
// names that have been bound (a request reached them) are present.
func (r *Router) ClientStates() []ClientState {
	r.bounds.mu.RLock()
	entries := make([]*boundEntry, 0, len(r.bounds.m))
	for _, e := range r.bounds.m {
		entries = append(entries, e.v)
	}
	r.bounds.mu.RUnlock()
	out := make([]ClientState, 0, len(entries))
	for _, b := range entries {
		cs, ok := b.state()
		if ok {
			out = append(out, cs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// BoundNames returns the ids of the names in the bound tier, sorted.
func (r *Router) BoundNames() []string {
	cs := r.ClientStates()
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// state snapshots b; ok is false until b has been initialised.
func (b *boundEntry) state() (ClientState, bool) {
	a := b.addr.Load()
	if a == nil {
		// init has not stored an address yet; b.bal may not be set.
		return ClientState{}, false
	}
	cs := ClientState{ID: b.key, State: addrStateName(a.State), Addresses: []string{}, Endpoints: []EndpointState{}}
	for _, x := range a.Addrs {
		cs.Addresses = append(cs.Addresses, x.HostPort())
	}
	sort.Strings(cs.Addresses)
	if ll, ok := b.bal.(*leastLoaded); ok {
		// The fallback balancer keeps its own load and has no failure
		// accrual.
		ll.mu.RLock()
		for _, e := range ll.eps {
			cs.Endpoints = append(cs.Endpoints, EndpointState{Address: e.ep.Key, Available: true, Load: e.load.Load()})
		}
		ll.mu.RUnlock()
	} else {
		for _, e := range b.bal.Endpoints() {
			ej := e.Ejected()
			cs.Endpoints = append(cs.Endpoints, EndpointState{Address: e.Key, Available: !ej, Ejected: ej, Load: e.Pending()})
		}
	}
	sort.Slice(cs.Endpoints, func(i, j int) bool { return cs.Endpoints[i].Address < cs.Endpoints[j].Address })
	return cs, true
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
