package config

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one configuration problem.
type Error struct {
	// Path names the place, e.g. "routers[0].identifier.kind"; empty for
	// the document itself.
	Path string
	// Line is the 1-based line of the offending key or value; 0 if unknown.
	Line int
	// Msg says what is wrong.
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Errors is several configuration problems, in document order. Load returns
// it only when there is more than one problem; errors.As(err, **Error)
// finds the first.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the individual errors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// AsErrors returns the individual problems of err: the *Error values inside an
// Errors, a single *Error, or (for any other error) one Error holding its
// message.
func AsErrors(err error) []*Error {
	if err == nil {
		return nil
	}
	var es Errors
	if errors.As(err, &es) {
		return es
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return []*Error{{Msg: err.Error()}}
}

// FieldError is for Validate methods: it reports a problem with the key
// named field (a path relative to the struct being validated, e.g. "port"
// or "servers[1].port"). The decoder prefixes the struct's own path and
// fills in the line of that key when it is present in the text.
func FieldError(field, format string, args ...any) error {
	return &Error{Path: field, Msg: fmt.Sprintf(format, args...)}
}

// Unsupported returns the error for a Linkerd 1.x option that exists but is
// not implemented by this version. Validate methods use it for values (not
// keys) that are unsupported, e.g. `protocol: thrift`.
func Unsupported(what string) string {
	return what + " is a Linkerd 1.x option not supported by this version"
}

// UnsupportedSuffix is the text every "not supported" message ends with;
// tests and tools use it to tell unimplemented features from mistakes.
const UnsupportedSuffix = "not supported by this version"

// joinPath joins a parent path and a relative field path.
func joinPath(parent, rel string) string {
	switch {
	case parent == "":
		return rel
	case rel == "":
		return parent
	case strings.HasPrefix(rel, "["):
		return parent + rel
	default:
		return parent + "." + rel
	}
}
