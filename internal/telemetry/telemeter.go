package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// TelemeterConfig is the config of one entry of a `telemetry:` list
// (linkerd.yaml and namerd.yaml). Each kind (io.l5d.prometheus,
// io.l5d.zipkin, io.l5d.recentRequests) registers its config struct with
// config.Register[telemetry.TelemeterConfig]; the struct embeds
// TelemeterCommon and carries the kind's own keys.
type TelemeterConfig interface {
	// NewTelemeter builds the telemeter.
	NewTelemeter(env TelemeterEnv) (Telemeter, error)
}

// TelemeterCommon holds the keys every telemeter kind accepts.
type TelemeterCommon struct {
	// Experimental is accepted on every telemeter, as Linkerd does (it
	// gates io.l5d.statsd there).
	Experimental bool `yaml:"experimental"`
}

// TelemeterEnv is what a telemeter is built with.
type TelemeterEnv struct {
	// Ctx is cancelled when the process shuts down.
	Ctx      context.Context
	Registry *Registry
	Logger   *slog.Logger
}

// Telemeter is a built telemeter. Besides AdminHandlers and Close, a
// telemeter may implement TracerFactory (io.l5d.zipkin) or RequestRecorder
// (io.l5d.recentRequests); the host checks with a type assertion.
type Telemeter interface {
	// AdminHandlers are the pages the admin server must mount (e.g.
	// /admin/metrics/prometheus, /requests). May be empty.
	AdminHandlers() []AdminHandler
	io.Closer
}

// AdminHandler is one admin page served by a telemeter.
type AdminHandler struct {
	Path    string // exact path, e.g. "/admin/metrics/prometheus"
	Handler http.Handler
}

// TracerFactory is implemented by tracing telemeters. The host asks it for
// one Tracer per router.
type TracerFactory interface {
	NewTracer(opts TracerOptions) (Tracer, error)
}

// TracerBroadcaster is implemented by a TracerFactory that can record
// together with other tracing telemeters (tracing.Factory, which the
// tracing telemeters embed): BroadcastTracers returns a factory whose
// Tracers record each span once and report it to the receiver and to each
// of others, as Linkerd's BroadcastTracer does. It fails when one of
// others is of a kind it cannot combine with. Each telemeter keeps the
// traces its own sampleRate samples; only the telemeters whose decision
// propagates (io.l5d.zipkin, not io.l5d.tracelog: tracing.Factory's
// LocalOnly) make the next hop sample a trace.
type TracerBroadcaster interface {
	TracerFactory
	BroadcastTracers(others []TracerFactory) (TracerFactory, error)
}

// TracerOptions says which router a Tracer serves.
type TracerOptions struct {
	// Router is the router label; it names the local service in spans.
	Router string
	// Propagator is the router's tracePropagator kind: "io.l5d.default"
	// (l5d-ctx-trace, l5d-sample, l5d-reqid) or "io.l5d.zipkin" (B3).
	// Empty means io.l5d.default.
	Propagator string
}

// Tracer records server and client spans for one router.
type Tracer interface {
	// Server wraps a router's server handler: it reads (and removes) the
	// inbound trace headers, starts the server span and puts it in the
	// request context. Mount it inside clearContext stripping.
	Server(next http.Handler) http.Handler
	// Client wraps the transport to one endpoint: it starts a client span
	// under the span in the request context and writes the outbound trace
	// headers (l5d-ctx-trace + l5d-reqid, or x-b3-*).
	Client(next http.RoundTripper) http.RoundTripper
}

// RequestRecorder is implemented by io.l5d.recentRequests. The router
// calls Record once per request, after routing; the recorder samples.
type RequestRecorder interface {
	Record(r RequestRecord)
}

// RequestRecord is one routed request as the /requests page shows it.
type RequestRecord struct {
	Time        time.Time
	Source      string // remote address of the caller, "ip:port"
	Server      string // listener, "ip:port"
	Router      string // router label
	Logical     string // logical name, e.g. /svc/hello
	Concrete    string // bound name, e.g. /#/io.l5d.fs/hello
	Destination string // endpoint address, "ip:port"
	Method      string
	URI         string
	Status      int // 0 when no response
	Duration    time.Duration
}

// Telemeters is a process's built `telemetry:` list, with the lookups the
// host needs.
type Telemeters []Telemeter

// AdminHandlers returns every telemeter's admin pages.
func (ts Telemeters) AdminHandlers() []AdminHandler {
	var out []AdminHandler
	for _, t := range ts {
		out = append(out, t.AdminHandlers()...)
	}
	return out
}

// TracerFactory returns a factory recording to every tracing telemeter,
// or nil when none is configured (use tracing.PropagateOnly() then: trace
// headers must still be propagated). With several, the first combines
// them (TracerBroadcaster); if it cannot, the factory's NewTracer returns
// the error, so that the process does not start with a telemeter
// silently left out.
func (ts Telemeters) TracerFactory() TracerFactory {
	var fs []TracerFactory
	for _, t := range ts {
		if f, ok := t.(TracerFactory); ok {
			fs = append(fs, f)
		}
	}
	switch len(fs) {
	case 0:
		return nil
	case 1:
		return fs[0]
	}
	b, ok := fs[0].(TracerBroadcaster)
	if !ok {
		return failingFactory{fmt.Errorf("telemetry: %T cannot record spans together with other tracing telemeters", fs[0])}
	}
	f, err := b.BroadcastTracers(fs[1:])
	if err != nil {
		return failingFactory{err}
	}
	return f
}

// failingFactory is a TracerFactory whose tracers cannot be built.
type failingFactory struct{ err error }

func (f failingFactory) NewTracer(TracerOptions) (Tracer, error) { return nil, f.err }

// Recorder returns a RequestRecorder feeding every recording telemeter,
// or nil when there is none (so the router can skip building records).
func (ts Telemeters) Recorder() RequestRecorder {
	var rs multiRecorder
	for _, t := range ts {
		if r, ok := t.(RequestRecorder); ok {
			rs = append(rs, r)
		}
	}
	switch len(rs) {
	case 0:
		return nil
	case 1:
		return rs[0]
	}
	return rs
}

type multiRecorder []RequestRecorder

func (m multiRecorder) Record(r RequestRecord) {
	for _, rr := range m {
		rr.Record(r)
	}
}

// Close closes every telemeter and returns the first error.
func (ts Telemeters) Close() error {
	var first error
	for _, t := range ts {
		if err := t.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
