package thrift

import (
	"testing"

	"go.uber.org/goleak"
)

// Every poll, session, observation and connection handler ends with its
// context or server.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
