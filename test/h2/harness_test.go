// Package h2 runs the real linnet binary with `protocol: h2` routers and
// drives them with real gRPC and HTTP/2 clients on loopback.
package h2

import (
	"testing"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int { return linnettest.FreePort(t) }

// startRouter runs `linnet router -` with config on stdin, waits until
// its admin server (on adminPort) answers, and stops it by PID (SIGTERM)
// when the test ends.
func startRouter(t *testing.T, config string, adminPort int) {
	t.Helper()
	linnettest.StartRouter(t, config, adminPort)
}
