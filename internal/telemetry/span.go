package telemetry

import (
	"context"
	"time"
)

// Span is the part of a trace span the router needs: tagging the current
// server or client span with routing facts (router.label, namer.path,
// dst.id, ...). The tracing middleware puts one in the request context;
// without tracing SpanFromContext returns a Span that does nothing.
type Span interface {
	Tag(key, value string)
	Annotate(t time.Time, value string)
}

// Span tag keys Linkerd 1 records on its spans.
const (
	TagRouterLabel = "router.label" // router label
	TagNamerPath   = "namer.path"   // logical name
	TagDstID       = "dst.id"       // bound name
	TagDstPath     = "dst.path"     // residual path
	TagDstAddr     = "dst.addr"     // chosen endpoint
	TagSuccess     = "l5d.success"  // classification (annotation in Linkerd)
	TagFailure     = "l5d.failure"  // classification (annotation in Linkerd)
)

type spanKey struct{}

// ContextWithSpan returns ctx carrying s.
func ContextWithSpan(ctx context.Context, s Span) context.Context {
	return context.WithValue(ctx, spanKey{}, s)
}

// SpanFromContext returns the span in ctx, or a no-op span.
func SpanFromContext(ctx context.Context) Span {
	if s, ok := ctx.Value(spanKey{}).(Span); ok {
		return s
	}
	return noSpan{}
}

type noSpan struct{}

func (noSpan) Tag(string, string)         {}
func (noSpan) Annotate(time.Time, string) {}
