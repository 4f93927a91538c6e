package consul

import (
	"slices"

	"github.com/linnet-mesh/linnet/internal/naming"
)

// ServiceState is one watched service on the namer's admin state page.
type ServiceState struct {
	// State is pending, bound, neg or failed.
	State     string   `json:"state"`
	Addresses []string `json:"addresses"`
	// Error is the last Consul failure while it lasts ("" once Consul
	// answers again).
	Error string `json:"error,omitempty"`
}

// State implements naming.StateReporter (/namer_state/<prefix>.json): the
// services being watched, by bound id.
func (n *Namer) State() any {
	type doc struct {
		Services map[string]ServiceState `json:"services"`
	}
	n.mu.Lock()
	svcs := make([]*service, 0, len(n.services))
	for _, s := range n.services {
		svcs = append(svcs, s)
	}
	n.mu.Unlock()
	d := doc{Services: make(map[string]ServiceState, len(svcs))}
	for _, s := range svcs {
		st := ServiceState{Addresses: []string{}}
		a := s.addr.Get()
		switch a.State {
		case naming.AddrBound:
			st.State = "bound"
		case naming.AddrNeg:
			st.State = "neg"
		case naming.AddrFailed:
			st.State = "failed"
		default:
			st.State = "pending"
		}
		for _, x := range a.Addrs {
			st.Addresses = append(st.Addresses, x.HostPort())
		}
		slices.Sort(st.Addresses)
		s.errMu.Lock()
		st.Error = s.shownErr
		s.errMu.Unlock()
		d.Services[s.id.String()] = st
	}
	return d
}

var _ naming.StateReporter = (*Namer)(nil)
