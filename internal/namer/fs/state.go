package fs

import (
	"sort"

	"github.com/linnet-mesh/linnet/internal/naming"
)

// NameState is what the namer publishes for one file.
type NameState struct {
	// State is bound, neg, pending or failed (the file does not parse).
	State     string   `json:"state"`
	Addresses []string `json:"addresses"`
	Error     string   `json:"error,omitempty"`
}

// State implements naming.StateReporter for /namer_state/<prefix>.json:
// the directory, the names it holds (by path below the directory) with
// the addresses currently published for each, and the paths being
// watched by lookups.
func (n *Namer) State() any {
	type doc struct {
		RootDir string               `json:"rootDir"`
		Names   map[string]NameState `json:"names"`
		Lookups []string             `json:"lookups"`
	}
	d := doc{RootDir: n.root, Names: map[string]NameState{}, Lookups: []string{}}
	n.mu.Lock()
	for rel, f := range n.files {
		s := NameState{Addresses: []string{}}
		if f.err != nil {
			s.State, s.Error = "failed", f.err.Error()
		} else {
			a := f.addr.Get()
			s.State = addrStateName(a.State)
			for _, x := range a.Addrs {
				s.Addresses = append(s.Addresses, x.HostPort())
			}
			sort.Strings(s.Addresses)
		}
		d.Names[rel] = s
	}
	for k := range n.lookups {
		d.Lookups = append(d.Lookups, k)
	}
	n.mu.Unlock()
	sort.Strings(d.Lookups)
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
