package namerd

import (
	"fmt"
	"testing"
)

// TestRouterFollowsNamerdThrift is the walkthrough's setup: a router with
// `interpreter: {kind: io.l5d.namerd}` against namerd's
// io.l5d.thriftNameInterpreter (ThriftMux), the dtab changed with
// `linnet dtab update`; namerd is killed and restarted under traffic and no
// request may fail.
func TestRouterFollowsNamerdThrift(t *testing.T) {
	v1, v2 := backend(t, "world-v1"), backend(t, "world-v2")
	ndAdmin, ndAPI, ndThrift := freePort(t), freePort(t), freePort(t)
	cfg := namerdConfig(ndAdmin, ndAPI, "  kind: io.linnet.file\n  dir: "+t.TempDir()) +
		fmt.Sprintf("- kind: io.l5d.thriftNameInterpreter\n  port: %d\n", ndThrift)
	nd := start(t, "namerd", cfg, ndAdmin)
	base := fmt.Sprintf("http://127.0.0.1:%d", ndAPI)
	dtabCLI(t, base, fmt.Sprintf("/svc/world => %s;\n", inet(v1)), "create", "internal", "-").want(t, 0, "Created internal\n")

	rtAdmin, rtPort := freePort(t), freePort(t)
	start(t, "router", fmt.Sprintf(`admin:
  ip: 127.0.0.1
  port: %d
routers:
- protocol: http
  label: outgoing
  interpreter:
    kind: io.l5d.namerd
    dst: /$/inet/127.0.0.1/%d
    namespace: internal
    retry:
      baseSeconds: 1
      maxSeconds: 1
  servers:
  - ip: 127.0.0.1
    port: %d
`, rtAdmin, ndThrift, rtPort), rtAdmin)

	shiftUnderTraffic(t, shift{
		namerd: nd, namerdAPI: base, namespace: "internal",
		routerAdmin: rtAdmin, routerPort: rtPort, label: "outgoing",
		v1: v1, v2: v2,
	})
}
