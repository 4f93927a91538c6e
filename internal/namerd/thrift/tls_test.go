package thrift_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest/inproc"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Routers reach a thrift interface that serves TLS with Linkerd's
// `tls: {commonName, caCert}`; a router expecting another name gets
// nothing.
func TestInterpreterOverTLS(t *testing.T) {
	port, caCert := inproc.StartTLS(t, "io.l5d.thriftNameInterpreter", "internal")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	good := newInterpreter(t, ctx, port, fmt.Sprintf("  tls:\n    commonName: %s\n    caCert: %s\n", inproc.ServerName, caCert))
	b := namerdtest.Record(t, good.Bind(nil, dtab.MustParsePath("/svc/world")))
	b.Await(t, "bind over TLS", 5*time.Second, func(a watch.Activity[naming.BoundTree]) bool { return namerdtest.LeafID(a) == "/#/io.l5d.fs/world" })

	wrong := newInterpreter(t, ctx, port, fmt.Sprintf("  tls:\n    commonName: someone-else.test\n    caCert: %s\n", caCert))
	w := namerdtest.Record(t, wrong.Bind(nil, dtab.MustParsePath("/svc/world")))
	time.Sleep(500 * time.Millisecond)
	if a := w.Get(); a.State != watch.Pending {
		t.Fatalf("a router expecting another certificate name got %v", a)
	}
}
