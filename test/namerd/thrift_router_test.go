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
	routerFollowsNamerd(t, "io.l5d.thriftNameInterpreter", "internal", "outgoing", func(_, thriftPort int) string {
		return fmt.Sprintf("kind: io.l5d.namerd\ndst: /$/inet/127.0.0.1/%d\nnamespace: internal\nretry:\n  baseSeconds: 1\n  maxSeconds: 1\n", thriftPort)
	})
}
