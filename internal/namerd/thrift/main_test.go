package thrift

import (
	"testing"

	"go.uber.org/goleak"
)

// Every poll, session, observation and connection handler ends with its
// context or server (the fuzz target's shared server aside).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/linnet-mesh/linnet/internal/namerd/thrift.(*Server).janitor"))
}
