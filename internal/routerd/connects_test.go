package routerd

import (
	"net"
	"testing"

	"github.com/linnet-mesh/linnet/internal/balancer"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// TestClientConnectsAttribution: a new endpoint connection counts in
// client/<id>/connects of every bound name holding that endpoint when it
// is opened, of no other, and a bound name that drops the endpoint keeps
// its count (connects never goes down).
func TestClientConnectsAttribution(t *testing.T) {
	reg := telemetry.NewRegistry()
	rs := reg.Scope().Scope("rt", "web")
	e := new(endpointConns)
	client := e.countConns(rs, func(id dtab.Path) router.ClientPolicy {
		return router.ClientPolicy{NewBalancer: func() balancer.Balancer {
			b, err := balancer.New(balancer.Options{}, telemetry.ClientScope(rs, id.String()))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}}
	})
	newBal := func(id string, ports ...int) balancer.Balancer {
		b := client(dtab.MustParsePath(id)).NewBalancer()
		var addrs []naming.Address
		for _, p := range ports {
			addrs = append(addrs, naming.Address{Host: "127.0.0.1", Port: p, Weight: 1})
		}
		b.Update(addrs)
		return b
	}
	a := newBal("/#/a", 1001, 1002)
	newBal("/#/b", 1002)
	newBal("/#/c", 1003)
	connects := func(id string) int64 { return telemetry.ClientScope(rs, id).Counter(telemetry.Connects).Value() }
	dial := func(addr string) {
		c1, c2 := net.Pipe()
		defer c2.Close()
		e.wrapConn(addr)(c1).Close()
	}

	dial("127.0.0.1:1001")
	dial("127.0.0.1:1002")
	dial("127.0.0.1:1002")
	if got := [3]int64{connects("/#/a"), connects("/#/b"), connects("/#/c")}; got != [3]int64{3, 2, 0} {
		t.Fatalf("connects a, b, c = %v; want [3 2 0]", got)
	}
	a.Update([]naming.Address{{Host: "127.0.0.1", Port: 1003, Weight: 1}})
	dial("127.0.0.1:1002")
	dial("127.0.0.1:1003")
	if got := [3]int64{connects("/#/a"), connects("/#/b"), connects("/#/c")}; got != [3]int64{4, 3, 1} {
		t.Fatalf("after a moved to :1003, connects a, b, c = %v; want [4 3 1]", got)
	}
	// An evicted bound name (closed balancer) counts nothing more and
	// keeps what it counted; binding it again counts into the same counter.
	a.Close()
	dial("127.0.0.1:1003")
	if got := connects("/#/a"); got != 4 {
		t.Fatalf("after a was closed, connects a = %d; want 4", got)
	}
	newBal("/#/a", 1003)
	dial("127.0.0.1:1003")
	if got := connects("/#/a"); got != 5 {
		t.Fatalf("after a was bound again, connects a = %d; want 5", got)
	}
}
