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

// Span tag keys (Zipkin v2 tags; "binary annotations" in Linkerd 1) that
// Linkerd records on its spans. The tracing middleware sets the http.*
// ones; the router sets the routing ones on the span of the request
// context.
const (
	TagRouterLabel  = "router.label"    // router label
	TagNamerPath    = "namer.path"      // logical name, e.g. /svc/hello
	TagNamerDtab    = "namer.dtab.base" // the router's dtab
	TagDtabLocal    = "dtab.local"      // the request's local dtab, when non-empty
	TagDstID        = "dst.id"          // bound name, e.g. /#/io.l5d.fs/hello
	TagDstPath      = "dst.path"        // residual path
	TagDstAddr      = "dst.addr"        // chosen endpoint
	TagHTTPURI      = "http.uri"
	TagHTTPMethod   = "http.req.method"
	TagHTTPHost     = "http.req.host"
	TagHTTPVersion  = "http.req.version"
	TagHTTPStatus   = "http.rsp.status"
	TagHTTPRspCType = "http.rsp.content-type"
)

// Span annotations (timestamped events) Linkerd records for the response
// classification: add one with Span.Annotate(time.Now(), ...).
const (
	AnnotationSuccess   = "l5d.success"
	AnnotationFailure   = "l5d.failure"
	AnnotationRetryable = "l5d.retryable"
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
