package marathon

import (
	"slices"

	"github.com/linnet-mesh/linnet/internal/naming"
)

// AppState is one watched app on the namer's admin state page.
type AppState struct {
	// State is pending, bound, neg or failed.
	State     string   `json:"state"`
	Addresses []string `json:"addresses"`
	// Error is the app's current Marathon failure, while it lasts (the
	// addresses shown are then the last known).
	Error string `json:"error,omitempty"`
}

// ListState is the app list on the state page.
type ListState struct {
	// State is pending, ok or failed.
	State string `json:"state"`
	Apps  int    `json:"apps"`
	Error string `json:"error,omitempty"`
}

// State implements naming.StateReporter (/namer_state/<prefix>.json): the
// app list and the watched apps, by bound id.
func (n *Namer) State() any {
	type doc struct {
		AppList ListState           `json:"appList"`
		Apps    map[string]AppState `json:"apps"`
	}
	n.mu.Lock()
	d := doc{AppList: ListState{State: "pending", Error: n.listErr}, Apps: make(map[string]AppState, len(n.apps))}
	switch {
	case n.list.ok:
		d.AppList.State, d.AppList.Apps = "ok", len(n.list.ids)
	case n.list.err != nil:
		d.AppList.State = "failed"
	}
	apps := make([]*app, 0, len(n.apps))
	for _, a := range n.apps {
		apps = append(apps, a)
	}
	n.mu.Unlock()
	for _, a := range apps {
		st := AppState{Addresses: []string{}}
		ad := a.addr.Get()
		switch ad.State {
		case naming.AddrBound:
			st.State = "bound"
		case naming.AddrNeg:
			st.State = "neg"
		case naming.AddrFailed:
			st.State = "failed"
		default:
			st.State = "pending"
		}
		for _, x := range ad.Addrs {
			st.Addresses = append(st.Addresses, x.HostPort())
		}
		slices.Sort(st.Addresses)
		a.errMu.Lock()
		st.Error = a.shownErr
		a.errMu.Unlock()
		d.Apps[a.bound.String()] = st
	}
	return d
}

var (
	_ naming.StateReporter = (*Namer)(nil)
	_ naming.Namer         = (*Namer)(nil)
	_ naming.Holder        = (*app)(nil)
)
