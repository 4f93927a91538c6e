package tracing

import (
	"fmt"

	"github.com/openzipkin/zipkin-go/reporter"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Factory makes the Tracers of every router from one reporter and sample
// rate. It implements telemetry.TracerFactory and, for a process with
// several tracing telemeters, telemetry.TracerBroadcaster. Tracing
// telemeters embed it.
type Factory struct {
	Reporter   reporter.Reporter // nil: propagate only
	SampleRate float64
	// LocalOnly says that the telemeter's sampling decisions stay in
	// this process: when it keeps a trace, that is not what the next hop
	// is told (io.l5d.tracelog, whose tracer in Linkerd answered
	// "unknown" to Finagle's sampleTrace). The zero value, false, is a
	// telemeter whose decision travels on (io.l5d.zipkin). See the
	// package doc for the decision written on the outbound request.
	LocalOnly bool
}

// PropagateOnly returns the TracerFactory to use when no tracing telemeter
// is configured: trace headers are still read and written, nothing is
// exported.
func PropagateOnly() telemetry.TracerFactory { return Factory{} }

// NewTracer implements telemetry.TracerFactory.
func (f Factory) NewTracer(o telemetry.TracerOptions) (telemetry.Tracer, error) {
	return New(Options{Router: o.Router, Propagator: o.Propagator, Reporter: f.Reporter, SampleRate: f.SampleRate, LocalOnly: f.LocalOnly})
}

// tracingFactory returns f; promoted to the telemeters embedding a
// Factory, it lets BroadcastTracers find their reporters and rates.
func (f Factory) tracingFactory() Factory { return f }

// BroadcastTracers implements telemetry.TracerBroadcaster: the returned
// factory's Tracers record each span once and report it to f and to each
// of others that keeps its trace (package doc). Each of others must embed
// a Factory.
func (f Factory) BroadcastTracers(others []telemetry.TracerFactory) (telemetry.TracerFactory, error) {
	b := Broadcast{f}
	for _, o := range others {
		of, ok := o.(interface{ tracingFactory() Factory })
		if !ok {
			return nil, fmt.Errorf("tracing: %T cannot record spans together with other tracing telemeters", o)
		}
		b = append(b, of.tracingFactory())
	}
	return b, nil
}

// Broadcast is a TracerFactory recording to several telemeters: its
// Tracers record each span once and report it to every member that keeps
// the span's trace (package doc: Linkerd's BroadcastTracer).
type Broadcast []Factory

// NewTracer implements telemetry.TracerFactory.
func (b Broadcast) NewTracer(o telemetry.TracerOptions) (telemetry.Tracer, error) {
	opts := Options{Router: o.Router, Propagator: o.Propagator}
	if len(b) > 0 {
		opts.Reporter, opts.SampleRate, opts.LocalOnly, opts.Also = b[0].Reporter, b[0].SampleRate, b[0].LocalOnly, b[1:]
	}
	return New(opts)
}

var (
	_ telemetry.TracerBroadcaster = Factory{}
	_ telemetry.TracerFactory     = Broadcast(nil)
)
