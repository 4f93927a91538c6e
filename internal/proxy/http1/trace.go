package http1

import (
	"net/http"
	"time"

	zipkin "github.com/openzipkin/zipkin-go"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// traceOutcome records, on the server span of r (put there by the
// router's telemetry.Tracer), the routing facts Linkerd annotates —
// the logical name, the bound name and residual the request went to, the
// local dtab — and the classification of the response: l5d.success, or
// l5d.failure for a failure kind. Without a recording span it does
// nothing (and allocates nothing).
func traceOutcome(r *http.Request, name dtab.Path, out *http.Request, kind telemetry.FailureKind) {
	span := telemetry.SpanFromContext(r.Context())
	if zs, ok := span.(zipkin.Span); !ok || !recording(zs) {
		return
	}
	if name != nil {
		span.Tag(telemetry.TagNamerPath, name.String())
	}
	if out != nil {
		for _, t := range [...]struct{ header, tag string }{
			{proxy.HeaderDstClient, telemetry.TagDstID},
			{proxy.HeaderDstResidual, telemetry.TagDstPath},
			{proxy.HeaderCtxDtab, telemetry.TagDtabLocal},
		} {
			if v := out.Header.Get(t.header); v != "" {
				span.Tag(t.tag, v)
			}
		}
	}
	if kind == "" {
		span.Annotate(time.Now(), telemetry.AnnotationSuccess)
	} else {
		span.Annotate(time.Now(), telemetry.AnnotationFailure)
		span.Tag("l5d.failure", string(kind))
	}
}

// recording reports whether a zipkin span is sampled (an unsampled one
// records nothing).
func recording(s zipkin.Span) bool {
	sc := s.Context()
	return sc.Debug || (sc.Sampled != nil && *sc.Sampled)
}
