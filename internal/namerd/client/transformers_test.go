package client

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/naming"
	_ "github.com/linnet-mesh/linnet/internal/router/transformers" // io.l5d.port
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// The interpreter's transformers rewrite what namerd binds, on every
// update, as Linkerd's interpreters do (linkerd-namerd.yml puts the
// daemonset transformer there).
func TestInterpreterTransformers(t *testing.T) {
	var c struct {
		Interpreter config.Kinded[naming.InterpreterConfig] `yaml:"interpreter"`
	}
	nd := startNamerd(t)
	host, port, _ := net.SplitHostPort(nd.addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := namerdtest.NewInterpreter(t, ctx, fmt.Sprintf(`  kind: io.l5d.namerd.http
  dst: /$/inet/%s/%s
  retry: {baseSeconds: 0.05, maxSeconds: 1}
  transformers:
  - kind: io.l5d.port
    port: 4141
`, host, port), telemetry.Scope{})
	f := followBinding(t, in.Bind(nil, dtab.MustParsePath("/svc/world")))
	f.await(t, "/%/io.l5d.port/4141/#/io.l5d.fs/v1@127.0.0.1:4141", 5*time.Second)
	if err := nd.store.Put(ctx, "default", dtab.MustParse("/svc/world=>/#/io.l5d.fs/v2")); err != nil {
		t.Fatal(err)
	}
	f.await(t, "/%/io.l5d.port/4141/#/io.l5d.fs/v2@127.0.0.1:4141", 5*time.Second)

	bad := fmt.Sprintf("interpreter:\n  kind: io.l5d.namerd.http\n  dst: /$/inet/%s/%s\n  transformers:\n  - kind: io.l5d.nope\n", host, port)
	if err := config.Load([]byte(bad), &c); err == nil {
		t.Error("an unknown transformer kind was accepted")
	}
}
