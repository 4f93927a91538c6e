package h2

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: streams
// that were never reset, connections never closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
