package storage

import (
	"errors"
	"fmt"
	"testing"
)

func TestForbiddenError(t *testing.T) {
	cause := errors.New("zk: not authenticated")
	err := fmt.Errorf("context: %w", &ForbiddenError{Reason: "ZooKeeper refused the write (NOAUTH): x", Err: cause})
	if !errors.Is(err, ErrForbidden) || !errors.Is(err, cause) {
		t.Fatalf("%v: Is(ErrForbidden)=%v Is(cause)=%v", err, errors.Is(err, ErrForbidden), errors.Is(err, cause))
	}
	if errors.Is(err, ErrNotFound) {
		t.Fatal("a refusal matches ErrNotFound")
	}
	if got := err.Error(); got != "context: ZooKeeper refused the write (NOAUTH): x" {
		t.Fatalf("Error() = %q", got)
	}
}
