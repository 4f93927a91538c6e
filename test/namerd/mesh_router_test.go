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
	routerFollowsNamerd(t, "io.l5d.mesh", "internal", "outgoing", func(_, meshPort int) string {
		return fmt.Sprintf("kind: io.l5d.mesh\ndst: /$/inet/127.0.0.1/%d\nroot: /internal\nretry:\n  baseSeconds: 1\n  maxSeconds: 1\n", meshPort)
	})
}
