package thrift

import (
	"context"
	"strings"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

// Identify returns the logical name of a call (spec config.md §4.4):
// the router's dstPrefix, then, with thriftMethodInDst, the method name as
// one more segment. A method name that cannot be a path segment (empty,
// or containing '/' or control characters) is unidentified.
func Identify(prefix dtab.Path, methodInDst bool, h Header) (dtab.Path, error) {
	if !methodInDst {
		return prefix, nil
	}
	if h.Name == "" {
		return nil, proxy.Unidentified("thrift method name is empty")
	}
	if strings.ContainsFunc(h.Name, func(r rune) bool { return r == '/' || r < 0x20 || r == 0x7f }) {
		return nil, proxy.Unidentified("thrift method name %q cannot be a path segment", h.Name)
	}
	out := make(dtab.Path, len(prefix), len(prefix)+1)
	copy(out, prefix)
	return append(out, h.Name), nil
}

type messageKey struct{}

// WithMessage returns a context carrying the call a request forwards.
// The router's tiers see an *http.Request; the client transport sends the
// message it finds here.
func WithMessage(ctx context.Context, m *Message) context.Context {
	return context.WithValue(ctx, messageKey{}, m)
}

// MessageFrom returns the call carried by ctx, or nil.
func MessageFrom(ctx context.Context) *Message {
	m, _ := ctx.Value(messageKey{}).(*Message)
	return m
}
