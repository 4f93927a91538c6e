package routerd

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	zipkin "github.com/openzipkin/zipkin-go"

	"github.com/linnet-mesh/linnet/internal/balancer"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/tracing"
)

// Tracing, wired once per router (telemetry/README.md "Wiring"):
//
//	tracing.Untrusted (clearContext servers only: drop inbound trace headers)
//	  → Tracer.Server (server span; reads l5d-ctx-trace/l5d-sample or x-b3-*)
//	    → http1 edge → router path/bound tiers (retries, timeouts, balancer)
//	      → Tracer.Client (one client span per attempt; writes l5d-ctx-trace
//	        + l5d-reqid or x-b3-*) → clientSpanTags → endpoint transport
//
// The Tracer is the one source of truth for the trace headers: it is
// installed even without a tracing telemeter (tracing.PropagateOnly), and
// the edge is told so (http1.HandlerParams.Tracing) and leaves them alone.

// tracerFactory returns a factory recording to every tracing telemeter of
// the process, or a propagate-only factory when there is none.
func tracerFactory(tms telemetry.Telemeters) telemetry.TracerFactory {
	if f := tms.TracerFactory(); f != nil {
		return f
	}
	return tracing.PropagateOnly()
}

// traceServer wraps the handler of one router server with the tracer's
// server span; a clearContext server first drops every inbound trace
// header, so an untrusted client can neither join nor force-sample a
// trace (headers-admin.md §3).
// The server span is tagged with the router's dtab (namer.dtab.base).
func traceServer(tr telemetry.Tracer, clearContext bool, base dtab.Dtab, h http.Handler) http.Handler {
	baseText := base.String()
	inner := h
	h = tr.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if span := telemetry.SpanFromContext(r.Context()); recording(span) {
			span.Tag(telemetry.TagNamerDtab, baseText)
		}
		inner.ServeHTTP(w, r)
	}))
	if clearContext {
		h = tracing.Untrusted(h)
	}
	return h
}

// traceTransport wraps the client-tier transport of one endpoint: a
// client span per attempt, tagged with the routing facts of the attempt.
func traceTransport(tr telemetry.Tracer, base router.Transport) router.Transport {
	return tracedTransport{RoundTripper: tr.Client(clientSpanTags(base)), base: base}
}

// tracedTransport is a traced RoundTripper that still closes the idle
// connections of the transport it wraps.
type tracedTransport struct {
	http.RoundTripper
	base router.Transport
}

func (t tracedTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// Base returns the transport under the tracing (the express lane writes
// requests on the endpoint client's connections itself).
func (t tracedTransport) Base() router.Transport { return t.base }

// clientSpanTags tags the client span in the request context (the
// attempt's) with Linkerd's routing annotations, read from the l5d-dst-*
// headers the path and bound tiers wrote, and annotates the attempt's
// outcome (l5d.success / l5d.failure, 5XX and errors being failures as in
// the client stats).
func clientSpanTags(next http.RoundTripper) http.RoundTripper {
	return router.RoundTripperFunc(func(r *http.Request) (*http.Response, error) {
		span := telemetry.SpanFromContext(r.Context())
		if !recording(span) {
			return next.RoundTrip(r)
		}
		h := r.Header
		tagHeader(span, h, proxy.HeaderDstService, telemetry.TagNamerPath)
		tagHeader(span, h, proxy.HeaderDstClient, telemetry.TagDstID)
		tagHeader(span, h, proxy.HeaderDstResidual, telemetry.TagDstPath)
		tagHeader(span, h, proxy.HeaderCtxDtab, telemetry.TagDtabLocal)
		resp, err := next.RoundTrip(r)
		if err == nil && resp.StatusCode < 500 {
			span.Annotate(time.Now(), telemetry.AnnotationSuccess)
		} else {
			span.Annotate(time.Now(), telemetry.AnnotationFailure)
		}
		return resp, err
	})
}

func tagHeader(span telemetry.Span, h http.Header, header, tag string) {
	if v := h.Get(header); v != "" {
		span.Tag(tag, v)
	}
}

// recording reports whether span records anything (a sampled zipkin
// span); tagging a no-op span would only cost allocations.
func recording(span telemetry.Span) bool {
	zs, ok := span.(zipkin.Span)
	if !ok {
		return false
	}
	sc := zs.Context()
	return sc.Debug || (sc.Sampled != nil && *sc.Sampled)
}

// countingListener keeps a server's connection metrics (connects,
// connections, closes under rt/<label>/server/<ip>/<port>): every accepted
// connection counts until it is closed, whichever path (fast or net/http,
// upgraded or not) ends up serving it.
type countingListener struct {
	net.Listener
	m *connMetrics
}

// connMetrics are the connection counters of one server or client scope.
type connMetrics struct {
	open     *telemetry.UpDown
	connects *telemetry.Counter
	closes   *telemetry.Counter
}

func newConnMetrics(s telemetry.Scope) *connMetrics {
	return &connMetrics{open: s.UpDown(telemetry.Connections), connects: s.Counter(telemetry.Connects), closes: s.Counter(telemetry.Closes)}
}

// track counts c as open until its first Close.
func (m *connMetrics) track(c net.Conn) net.Conn {
	m.connects.Inc()
	m.open.Add(1)
	return &countedConn{Conn: c, m: m}
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.m.track(c), nil
}

type countedConn struct {
	net.Conn
	m    *connMetrics
	once sync.Once
}

// NetConn returns the counted connection, so that its TLS state can be
// found through this wrapper (x-forwarded-client-cert).
func (c *countedConn) NetConn() net.Conn { return c.Conn }

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.m.open.Add(-1)
		c.m.closes.Inc()
	})
	return c.Conn.Close()
}

// endpointConns counts one router's open connections per endpoint. An
// endpoint's transport (and its connections) is shared by every bound
// name that includes it, so rt/<label>/client/<id>/connections is the
// sum over the bound name's current endpoints, as Linkerd's per-client
// pools would count them.
//
// rt/<label>/client/<id>/connects (a counter, so it must never go down)
// counts a new connection for every bound name that holds the endpoint
// at the moment the connection is opened: the same rule as the
// connections gauge, fixed at dial time instead of summed at read time.
// When an endpoint belongs to one bound name (the usual case) that is
// exactly the connections opened for that client. When several bound
// names share the endpoint, each of them counts the connection, as each
// of them counts it in connections; the alternative, the bound name whose
// request caused the dial, would need the request's context at the dial,
// which http1.TransportOptions.WrapConn does not receive.
type endpointConns struct {
	m sync.Map // "host:port" → *atomic.Int64

	mu sync.Mutex
	// clients are the balancer and connects counter of every bound name
	// the router has built, by bound id. An evicted bound name keeps its
	// entry (a closed balancer has no endpoints, so it counts nothing)
	// until the id is bound again, which replaces it; the registry keeps
	// that id's metrics for as long.
	clients map[string]clientConnects
}

// clientConnects is one bound name's balancer and connects counter.
type clientConnects struct {
	b        balancer.Balancer
	connects *telemetry.Counter
}

// dialed counts a new connection to addr in the connects counter of
// every bound name whose balancer holds addr now.
func (e *endpointConns) dialed(addr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.clients {
		for _, ep := range c.b.Endpoints() {
			if ep.Key == addr {
				c.connects.Inc()
				break
			}
		}
	}
}

// track registers the connects counter of bound name id, whose balancer is b.
func (e *endpointConns) track(id string, b balancer.Balancer, connects *telemetry.Counter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.clients == nil {
		e.clients = map[string]clientConnects{}
	}
	e.clients[id] = clientConnects{b: b, connects: connects}
}

func (e *endpointConns) counter(addr string) *atomic.Int64 {
	if v, ok := e.m.Load(addr); ok {
		return v.(*atomic.Int64)
	}
	v, _ := e.m.LoadOrStore(addr, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// wrapConn returns the http1.TransportOptions.WrapConn of endpoint addr.
func (e *endpointConns) wrapConn(addr string) func(net.Conn) net.Conn {
	n := e.counter(addr)
	return func(c net.Conn) net.Conn {
		n.Add(1)
		e.dialed(addr)
		return &closeOnce{Conn: c, onClose: func() { n.Add(-1) }}
	}
}

// gauge registers <client scope>/connections for the endpoints of b.
func (e *endpointConns) gauge(client telemetry.Scope, b balancer.Balancer) {
	client.Gauge(telemetry.Connections, func() float64 {
		var sum int64
		for _, ep := range b.Endpoints() {
			sum += e.counter(ep.Key).Load()
		}
		return float64(sum)
	})
}

// countConns makes a router's client policy register the connections
// gauge and the connects counter of each bound name's balancer.
func (e *endpointConns) countConns(routerScope telemetry.Scope, client func(dtab.Path) router.ClientPolicy) func(dtab.Path) router.ClientPolicy {
	return func(id dtab.Path) router.ClientPolicy {
		cp := client(id)
		if nb := cp.NewBalancer; nb != nil {
			cp.NewBalancer = func() balancer.Balancer {
				b := nb()
				if b != nil {
					cs := telemetry.ClientScope(routerScope, id.String())
					e.gauge(cs, b)
					e.track(id.String(), b, cs.Counter(telemetry.Connects))
				}
				return b
			}
		}
		return cp
	}
}

// closeOnce runs onClose at the first Close.
type closeOnce struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (c *closeOnce) Close() error {
	c.once.Do(c.onClose)
	return c.Conn.Close()
}
