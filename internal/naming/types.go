// Package naming turns logical names into bound names: the Namer and
// Interpreter contracts, the address types namers publish, the default
// interpreter (a dtab plus namers mounted under /#/<prefix> and the system
// namers under /$/), binding (spec/dtab.md §7) and the delegator (§10).
package naming

import (
	"net"
	"reflect"
	"strconv"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Address is one concrete endpoint of a bound name.
type Address struct {
	// Host is a literal IP address (v4 or v6), never a DNS name.
	Host string
	Port int
	// Weight scales this endpoint's share of traffic (1 when unset by the namer).
	Weight float64
	// Meta is namer-specific metadata (e.g. "nodeName" from Kubernetes).
	Meta map[string]any
}

// HostPort returns "host:port", bracketing IPv6 hosts.
func (a Address) HostPort() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// AddrState is the state of an address set.
type AddrState uint8

// Address set states (Finagle's Addr).
const (
	AddrPending AddrState = iota // not known yet
	AddrBound                    // Addrs is the current set (may be empty)
	AddrNeg                      // the name does not exist
	AddrFailed                   // Err says why it cannot be known
)

// Addr is the changing address set of a bound name.
type Addr struct {
	State AddrState
	Addrs []Address
	Meta  map[string]any
	Err   error
}

// AddrEqual reports whether a and b publish the same address set: the
// same state, error text and set metadata, and the same addresses in the
// same order (host, port, weight and metadata). Namers and transformers
// call it before Set so that an unchanged answer wakes no subscriber.
// Metadata is compared with reflect.DeepEqual, so a nil map and an empty
// one differ.
func AddrEqual(a, b Addr) bool {
	if a.State != b.State || len(a.Addrs) != len(b.Addrs) || !reflect.DeepEqual(a.Meta, b.Meta) {
		return false
	}
	if (a.Err == nil) != (b.Err == nil) || a.Err != nil && a.Err.Error() != b.Err.Error() {
		return false
	}
	for i := range a.Addrs {
		x, y := a.Addrs[i], b.Addrs[i]
		if x.Host != y.Host || x.Port != y.Port || x.Weight != y.Weight || !reflect.DeepEqual(x.Meta, y.Meta) {
			return false
		}
	}
	return true
}

// Bound is a name a namer resolved: ID identifies the replica set (it keys
// the client), Residual is the part of the looked-up path the namer did not
// consume, and Addr publishes its endpoints as they change.
type Bound struct {
	ID       dtab.Path
	Residual dtab.Path
	Addr     watch.Value[Addr]
}

// Name is a leaf of a namer's answer: either an unbound Path, to be
// delegated further through the dtab, or a Bound name. Exactly one is set.
type Name struct {
	Path  dtab.Path
	Bound *Bound
}

// BoundTree is the result of binding: a tree whose leaves are bound names.
type BoundTree = dtab.Tree[*Bound]

// Lookup is the changing answer of a namer for one path.
type Lookup = watch.Value[watch.Activity[dtab.Tree[Name]]]

// Namer resolves a path (with the namer's own /#/<prefix> removed) to a
// name tree that may change over time. Finagle's Namer.lookup.
// Lookups of the same path should share one underlying watch.
type Namer interface {
	Lookup(path dtab.Path) Lookup
}

// Binding is the changing result of binding one path through one dtab.
type Binding = watch.Value[watch.Activity[BoundTree]]

// Interpreter binds a logical path through a dtab. The default interpreter
// uses a local dtab and namers; io.l5d.namerd.http asks namerd.
type Interpreter interface {
	Bind(d dtab.Dtab, path dtab.Path) Binding
}
