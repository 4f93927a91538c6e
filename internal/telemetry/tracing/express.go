package tracing

import (
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/openzipkin/zipkin-go/model"
)

// ExpressHop is the trace work of one hop of the router's express lane
// (docs/performance.md, "Fifth pass"), done as Server and Client do it for
// an unsampled request, from the values of the request's l5d-ctx-trace and
// l5d-sample fields ("" when absent): the outbound l5d-ctx-trace and
// l5d-reqid values, in one string, split at n. ok is false when the hop
// would record a span (for any of the tracer's telemeters), or the tracer
// does not propagate with l5d-ctx-trace headers: the request then takes
// the full stack.
func (t *Tracer) ExpressHop(ctxTrace, sample string) (vals string, n int, ok bool) {
	if _, l5d := t.prop.(l5dPropagator); !l5d {
		return "", 0, false
	}
	var in inbound
	if ctxTrace != "" {
		if sc, parent, err := decodeCtxTrace(ctxTrace); err == nil {
			in.sc, in.parent = sc, parent
		}
	}
	if sample != "" {
		if f, err := strconv.ParseFloat(strings.TrimSpace(sample), 64); err == nil {
			f = min(max(f, 0), 1)
			in.sample = &f
		}
	}
	sc := in.sc
	if sc.Sampled == nil && !sc.Debug && in.sample != nil {
		sc.Sampled = sampledPtr(rand.Float64() < *in.sample)
	}
	parent := in.parent
	if parent != 0 {
		sc.ParentID = &parent
	}
	server, zt, known := t.serverContext(sc)
	if zt != nil {
		return "", 0, false
	}
	client := model.SpanContext{TraceID: server.TraceID, ID: model.ID(newID()), ParentID: &server.ID, Sampled: server.Sampled}
	if !known {
		client.Sampled = nil
	}
	var buf [ctxTraceMaxLen + 16]byte
	n = encodeCtxTrace(buf[:], client)
	encodeReqID(buf[n:n+16], client)
	return string(buf[:n+16]), n, true
}
