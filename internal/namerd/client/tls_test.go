package client

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest/inproc"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Routers reach a namerd whose httpController serves TLS; a router that
// expects another name gets nothing.
func TestInterpreterOverTLS(t *testing.T) {
	port, caCert := inproc.StartTLS(t, "io.l5d.httpController", "default")

	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	interp := func(commonName string) naming.Interpreter {
		return namerdtest.NewInterpreter(t, ctx, fmt.Sprintf("  kind: io.l5d.namerd.http\n  experimental: true\n  dst: /$/inet/127.0.0.1/%d\n  retry: {baseSeconds: 0.05, maxSeconds: 0.2}\n  tls:\n    commonName: %s\n    trustCerts: [%s]\n", port, commonName, caCert), telemetry.Scope{})
	}

	f := followBinding(t, interp(inproc.ServerName).Bind(nil, dtab.MustParsePath("/svc/world")))
	f.await(t, "/#/io.l5d.fs/world@127.0.0.1:7000", 5*time.Second)

	wrong := interp("someone-else.test").Bind(nil, dtab.MustParsePath("/svc/world"))
	cancel := wrong.Subscribe(func(watch.Activity[naming.BoundTree]) {})
	defer cancel()
	time.Sleep(500 * time.Millisecond)
	if a := wrong.Get(); a.State != watch.Pending {
		t.Fatalf("a client expecting another certificate name got %v", a)
	}
}
