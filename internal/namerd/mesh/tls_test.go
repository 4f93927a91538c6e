package mesh

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest/inproc"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// A mesh interface serving TLS (offering h2 over ALPN, which gRPC clients
// require) is reached by a router trusting its CA under the right name; a
// router expecting another name gets nothing.
func TestInterpreterOverTLS(t *testing.T) {
	port, caCert := inproc.StartTLS(t, Kind, "default")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	good := newInterpreterExtra(t, ctx, port, telemetry.Scope{}, fmt.Sprintf("  tls:\n    commonName: %s\n    trustCerts: [%s]\n", inproc.ServerName, caCert))
	b := namerdtest.Record(t, good.Bind(nil, dtab.MustParsePath("/svc/world")))
	b.Await(t, "bind over TLS", 5*time.Second, isLeaf("/#/io.l5d.fs/world"))

	wrong := newInterpreterExtra(t, ctx, port, telemetry.Scope{}, fmt.Sprintf("  tls:\n    commonName: someone-else.test\n    trustCerts: [%s]\n", caCert))
	w := namerdtest.Record(t, wrong.Bind(nil, dtab.MustParsePath("/svc/world")))
	time.Sleep(500 * time.Millisecond)
	if a := w.Get(); a.State != watch.Pending {
		t.Fatalf("a router expecting another certificate name got %v", a)
	}
	plain := newInterpreter(t, ctx, port, telemetry.Scope{})
	pl := namerdtest.Record(t, plain.Bind(nil, dtab.MustParsePath("/svc/world")))
	time.Sleep(300 * time.Millisecond)
	if a := pl.Get(); a.State != watch.Pending {
		t.Fatalf("a plaintext router got %v", a)
	}
}
