package tlsconf

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind (a Watch
// that outlived its context, a handshake left hanging).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
