package tracing

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/propagation/b3"
)

// Header names (spec headers-admin.md §2.3).
const (
	HeaderCtxTrace = "l5d-ctx-trace"
	HeaderSample   = "l5d-sample"
	HeaderReqID    = "l5d-reqid"
)

// The same names in net/http's canonical form, for direct map access: the
// Header methods canonicalise a lower-case name with an allocation on
// every call, which the request path cannot afford.
const (
	keyCtxTrace = "L5d-Ctx-Trace"
	keySample   = "L5d-Sample"
	keyReqID    = "L5d-Reqid"
)

// Propagator kinds (a router's tracePropagator.kind).
const (
	PropagatorDefault = "io.l5d.default"
	PropagatorZipkin  = "io.l5d.zipkin"
)

// Flag bits of l5d-ctx-trace (Finagle's trace flags).
const (
	flagDebug         = 1
	flagSamplingKnown = 2
	flagSampled       = 4
)

// inbound is what a propagator found on a request.
type inbound struct {
	sc     model.SpanContext // zero TraceID when there was no (valid) context
	sample *float64          // l5d-sample rate, if any
}

// propagator reads and removes inbound trace headers and writes outbound
// ones.
type propagator interface {
	extract(h http.Header) inbound
	inject(h http.Header, sc model.SpanContext)
}

func newPropagator(kind string) (propagator, error) {
	switch kind {
	case "", PropagatorDefault:
		return l5dPropagator{}, nil
	case PropagatorZipkin:
		return b3Propagator{}, nil
	}
	return nil, fmt.Errorf("unknown trace propagator %q (known: %s, %s)", kind, PropagatorDefault, PropagatorZipkin)
}

// l5dPropagator is Linkerd's default: l5d-ctx-trace, l5d-sample, l5d-reqid.
type l5dPropagator struct{}

func (l5dPropagator) extract(h http.Header) inbound {
	var in inbound
	if v := headerValue(h, keyCtxTrace); v != "" {
		if sc, err := DecodeCtxTrace(v); err == nil {
			in.sc = sc
		} // an unparsable value is ignored: a new trace starts
	}
	if v := headerValue(h, keySample); v != "" {
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			f = min(max(f, 0), 1)
			in.sample = &f
		}
	}
	delete(h, keyCtxTrace)
	delete(h, keySample)
	return in
}

func (l5dPropagator) inject(h http.Header, sc model.SpanContext) {
	vs := make([]string, 2) // one allocation for both values' slices
	vs[0], vs[1] = EncodeCtxTrace(sc), ReqID(sc)
	h[keyCtxTrace] = vs[0:1:1]
	h[keyReqID] = vs[1:2:2]
}

// headerValue is h.Get for a name already in canonical form.
func headerValue(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// b3Propagator is io.l5d.zipkin: x-b3-* headers.
type b3Propagator struct{}

// b3Headers are the B3 header names in canonical form.
var b3Headers = func() []string {
	ks := []string{b3.TraceID, b3.SpanID, b3.ParentSpanID, b3.Sampled, b3.Flags, b3.Context}
	for i, k := range ks {
		ks[i] = textproto.CanonicalMIMEHeaderKey(k)
	}
	return ks
}()

func (b3Propagator) extract(h http.Header) inbound {
	var in inbound
	if sc, err := b3.ExtractHTTP(&http.Request{Header: h})(); err == nil && sc != nil && !sc.TraceID.Empty() && sc.ID != 0 {
		in.sc = *sc
	} else if err == nil && sc != nil && sc.Sampled != nil {
		in.sc.Sampled = sc.Sampled // a bare sampling decision (x-b3-sampled only)
	}
	for _, k := range b3Headers {
		delete(h, k)
	}
	return in
}

func (b3Propagator) inject(h http.Header, sc model.SpanContext) {
	_ = b3.InjectHTTP(&http.Request{Header: h})(sc) // errors only on an empty context
	h[keyReqID] = []string{ReqID(sc)}
}

// ReqID is the l5d-reqid value of a span: the trace id (low 64 bits) as 16
// lower-case hex digits.
func ReqID(sc model.SpanContext) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], sc.TraceID.Low)
	return hex.EncodeToString(b[:])
}

// EncodeCtxTrace encodes sc as an l5d-ctx-trace value: base64 of span id,
// parent id (the span id itself for a root span), trace id and flags, 8
// bytes each, big-endian; 8 more bytes with the trace id's high half when
// it is a 128-bit id. A nil Sampled leaves the decision unknown.
func EncodeCtxTrace(sc model.SpanContext) string {
	n := 32
	if sc.TraceID.High != 0 {
		n = 40
	}
	b := make([]byte, n)
	parent := sc.ID
	if sc.ParentID != nil {
		parent = *sc.ParentID
	}
	var flags uint64
	if sc.Debug {
		flags |= flagDebug
	}
	if sc.Sampled != nil {
		flags |= flagSamplingKnown
		if *sc.Sampled {
			flags |= flagSampled
		}
	}
	binary.BigEndian.PutUint64(b[0:], uint64(sc.ID))
	binary.BigEndian.PutUint64(b[8:], uint64(parent))
	binary.BigEndian.PutUint64(b[16:], sc.TraceID.Low)
	binary.BigEndian.PutUint64(b[24:], flags)
	if n == 40 {
		binary.BigEndian.PutUint64(b[32:], sc.TraceID.High)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeCtxTrace parses an l5d-ctx-trace value.
func DecodeCtxTrace(v string) (model.SpanContext, error) {
	var sc model.SpanContext
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return sc, fmt.Errorf("l5d-ctx-trace: %w", err)
	}
	if len(b) != 32 && len(b) != 40 {
		return sc, fmt.Errorf("l5d-ctx-trace: %d bytes, want 32 or 40", len(b))
	}
	sc.ID = model.ID(binary.BigEndian.Uint64(b[0:]))
	parent := model.ID(binary.BigEndian.Uint64(b[8:]))
	sc.TraceID.Low = binary.BigEndian.Uint64(b[16:])
	flags := binary.BigEndian.Uint64(b[24:])
	if len(b) == 40 {
		sc.TraceID.High = binary.BigEndian.Uint64(b[32:])
	}
	if sc.ID == 0 || sc.TraceID.Empty() {
		return model.SpanContext{}, fmt.Errorf("l5d-ctx-trace: zero span or trace id")
	}
	if parent != sc.ID && parent != 0 {
		sc.ParentID = &parent
	}
	sc.Debug = flags&flagDebug != 0
	if flags&flagSamplingKnown != 0 {
		s := flags&flagSampled != 0
		sc.Sampled = &s
	}
	return sc, nil
}

// Untrusted wraps the handler of a server facing untrusted clients
// (servers[].clearContext): it removes every inbound trace header
// (l5d-ctx-trace, l5d-sample, x-b3-*) so that no trace context is accepted
// from the client and the Tracer's Server middleware inside starts a new
// trace (headers-admin.md §3).
func Untrusted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delete(r.Header, keyCtxTrace)
		delete(r.Header, keySample)
		for _, k := range b3Headers {
			delete(r.Header, k)
		}
		next.ServeHTTP(w, r)
	})
}
