package telemetry

import (
	"context"
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
