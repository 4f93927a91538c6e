package storage

import (
	"errors"
	"fmt"
)

// Errors a Store returns; test them with errors.Is. Backends may wrap them
// with more detail.
var (
	// ErrNotFound: the namespace does not exist.
	ErrNotFound = errors.New("dtab namespace not found")
	// ErrExists: Create of a namespace that already exists.
	ErrExists = errors.New("dtab namespace already exists")
	// ErrVersionMismatch: Update with a version that is not the current one.
	ErrVersionMismatch = errors.New("dtab version mismatch")
	// ErrInvalidNamespace: the backend cannot store a namespace of that name.
	ErrInvalidNamespace = errors.New("invalid dtab namespace")
	// ErrForbidden: the backend refused the operation for lack of permission.
	ErrForbidden = errors.New("dtab storage permission denied")
)

// InvalidNamespaceError says why a namespace name was refused. It matches
// ErrInvalidNamespace with errors.Is.
type InvalidNamespaceError struct {
	Namespace string
	Reason    string
}

func (e *InvalidNamespaceError) Error() string {
	return fmt.Sprintf("invalid dtab namespace %q: %s", e.Namespace, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidNamespace) true.
func (e *InvalidNamespaceError) Is(target error) bool { return target == ErrInvalidNamespace }

// CheckNamespace applies the rules every backend shares: a namespace is a
// non-empty string of at most 253 bytes without control characters. Backends
// with stricter rules check those after this.
func CheckNamespace(ns string) error {
	if ns == "" {
		return &InvalidNamespaceError{Namespace: ns, Reason: "empty name"}
	}
	if len(ns) > 253 {
		return &InvalidNamespaceError{Namespace: ns, Reason: "longer than 253 bytes"}
	}
	for i := 0; i < len(ns); i++ {
		if c := ns[i]; c < 0x20 || c == 0x7f {
			return &InvalidNamespaceError{Namespace: ns, Reason: fmt.Sprintf("control character 0x%02x at byte %d", c, i)}
		}
	}
	return nil
}

// ForbiddenError is a backend's refusal for lack of permission, with the
// backend's own words (e.g. "ZooKeeper refused the write (NOAUTH): ..."),
// which namerd's HTTP API returns in its 403 body. It matches ErrForbidden
// with errors.Is and unwraps to the backend's error.
type ForbiddenError struct {
	// Reason says who refused what, and why.
	Reason string
	// Err is the backend's error, if any.
	Err error
}

func (e *ForbiddenError) Error() string { return e.Reason }

// Unwrap returns the backend's error.
func (e *ForbiddenError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }
