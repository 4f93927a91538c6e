package namerd

import (
	"fmt"
	"testing"
)

// TestRouterFollowsNamerdMesh is TestRouterFollowsNamerd over gRPC: a
// router with `interpreter: {kind: io.l5d.mesh}` against namerd's
// io.l5d.mesh interface, the dtab changed with `linnet dtab update`;
// namerd is killed and restarted under traffic and no request may fail.
func TestRouterFollowsNamerdMesh(t *testing.T) {
	v1, v2 := backend(t, "world-v1"), backend(t, "world-v2")
	ndAdmin, ndAPI, ndMesh := freePort(t), freePort(t), freePort(t)
	cfg := namerdConfig(ndAdmin, ndAPI, "  kind: io.linnet.file\n  dir: "+t.TempDir()) +
		fmt.Sprintf("- kind: io.l5d.mesh\n  port: %d\n", ndMesh)
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
    kind: io.l5d.mesh
    dst: /$/inet/127.0.0.1/%d
    root: /internal
    retry:
      baseSeconds: 1
      maxSeconds: 1
  servers:
  - ip: 127.0.0.1
    port: %d
`, rtAdmin, ndMesh, rtPort), rtAdmin)

	shiftUnderTraffic(t, shift{
		namerd: nd, namerdAPI: base, namespace: "internal",
		routerAdmin: rtAdmin, routerPort: rtPort, label: "outgoing",
		v1: v1, v2: v2,
	})
}
