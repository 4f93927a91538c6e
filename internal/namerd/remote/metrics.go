package remote

import (
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Metrics are Linkerd's namerd interpreter metrics, which io.l5d.namerd
// and io.l5d.mesh both report under interpreter/<kind>/: bind/success,
// bind/failure, addr/success and addr/failure count namerd's answers and
// the failed requests, bindcache.size and addrcache.size the running
// watches.
type Metrics struct {
	BindOK, BindFailed, AddrOK, AddrFailed *telemetry.Counter
}

// NewMetrics registers the metrics of an interpreter's watches in sc.
func NewMetrics(sc telemetry.Scope, bind *Watches[watch.Activity[naming.BoundTree]], addr *Watches[naming.Addr]) Metrics {
	m := Metrics{
		BindOK: sc.Scope("bind").Counter("success"), BindFailed: sc.Scope("bind").Counter("failure"),
		AddrOK: sc.Scope("addr").Counter("success"), AddrFailed: sc.Scope("addr").Counter("failure"),
	}
	sc.Gauge("bindcache.size", func() float64 { return float64(bind.Len()) })
	sc.Gauge("addrcache.size", func() float64 { return float64(addr.Len()) })
	return m
}
