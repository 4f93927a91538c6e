package tracing

import (
	"github.com/openzipkin/zipkin-go/reporter"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Factory makes the Tracers of every router from one reporter and sample
// rate. It implements telemetry.TracerFactory.
type Factory struct {
	Reporter   reporter.Reporter // nil: propagate only
	SampleRate float64
}

// PropagateOnly returns the TracerFactory to use when no tracing telemeter
// is configured: trace headers are still read and written, nothing is
// exported.
func PropagateOnly() telemetry.TracerFactory { return Factory{} }

// NewTracer implements telemetry.TracerFactory.
func (f Factory) NewTracer(o telemetry.TracerOptions) (telemetry.Tracer, error) {
	return New(Options{Router: o.Router, Propagator: o.Propagator, Reporter: f.Reporter, SampleRate: f.SampleRate})
}
