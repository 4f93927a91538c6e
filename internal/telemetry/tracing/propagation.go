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
	sc     model.SpanContext // zero TraceID when there was no (valid) context; ParentID nil
	parent model.ID          // sc's parent span id; 0: none
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
		if sc, parent, err := decodeCtxTrace(v); err == nil {
			in.sc, in.parent = sc, parent
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
	// Both values are encoded into one stack buffer and share one string;
	// both slices share one array: two allocations in all.
	var buf [ctxTraceMaxLen + 16]byte
	n := encodeCtxTrace(buf[:], sc)
	encodeReqID(buf[n:n+16], sc)
	s := string(buf[:n+16])
	vs := make([]string, 2)
	vs[0], vs[1] = s[:n], s[n:]
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
		if sc.ParentID != nil {
			in.sc.ParentID, in.parent = nil, *sc.ParentID
		}
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
	var b [16]byte
	encodeReqID(b[:], sc)
	return string(b[:])
}

// encodeReqID writes the l5d-reqid value of sc into dst (16 bytes).
func encodeReqID(dst []byte, sc model.SpanContext) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], sc.TraceID.Low)
	hex.Encode(dst[:], b[:])
}

// ctxTraceMaxLen is the longest l5d-ctx-trace value: base64 of 40 bytes.
const ctxTraceMaxLen = 56

// EncodeCtxTrace encodes sc as an l5d-ctx-trace value: base64 of span id,
// parent id (the span id itself for a root span), trace id and flags, 8
// bytes each, big-endian; 8 more bytes with the trace id's high half when
// it is a 128-bit id. A nil Sampled leaves the decision unknown.
func EncodeCtxTrace(sc model.SpanContext) string {
	var b [ctxTraceMaxLen]byte
	return string(b[:encodeCtxTrace(b[:], sc)])
}

// encodeCtxTrace writes the l5d-ctx-trace value of sc at the start of dst
// (at least ctxTraceMaxLen bytes: a caller's stack array) and returns its
// length (44, or 56 with a 128-bit trace id).
func encodeCtxTrace(dst []byte, sc model.SpanContext) int {
	var b [40]byte
	n := 32
	if sc.TraceID.High != 0 {
		n = 40
	}
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
	base64.StdEncoding.Encode(dst, b[:n])
	return base64.StdEncoding.EncodedLen(n)
}

// DecodeCtxTrace parses an l5d-ctx-trace value.
func DecodeCtxTrace(v string) (model.SpanContext, error) {
	sc, parent, err := decodeCtxTrace(v)
	if parent != 0 {
		sc.ParentID = &parent
	}
	return sc, err
}

// decodeCtxTrace is DecodeCtxTrace with the parent id (0: none) returned
// apart, so that the request path can keep it without an allocation.
func decodeCtxTrace(v string) (sc model.SpanContext, _ model.ID, _ error) {
	v = strings.TrimSpace(v)
	if n := base64.StdEncoding.DecodedLen(len(v)); n != 33 && n != 42 {
		// Not 44 or 56 characters: the decoder would report a bad
		// length or padding anyway; say what a valid value is.
		return sc, 0, fmt.Errorf("l5d-ctx-trace: %d characters, want 44 or 56 (base64 of 32 or 40 bytes)", len(v))
	}
	var buf [42]byte // decoded on the stack: the request path allocates nothing
	n, err := base64.StdEncoding.Decode(buf[:], []byte(v))
	if err != nil {
		return sc, 0, fmt.Errorf("l5d-ctx-trace: %w", err)
	}
	b := buf[:n]
	if len(b) != 32 && len(b) != 40 {
		return sc, 0, fmt.Errorf("l5d-ctx-trace: %d bytes, want 32 or 40", len(b))
	}
	sc.ID = model.ID(binary.BigEndian.Uint64(b[0:]))
	parent := model.ID(binary.BigEndian.Uint64(b[8:]))
	sc.TraceID.Low = binary.BigEndian.Uint64(b[16:])
	flags := binary.BigEndian.Uint64(b[24:])
	if len(b) == 40 {
		sc.TraceID.High = binary.BigEndian.Uint64(b[32:])
	}
	if sc.ID == 0 || sc.TraceID.Empty() {
		return model.SpanContext{}, 0, fmt.Errorf("l5d-ctx-trace: zero span or trace id")
	}
	if parent == sc.ID {
		parent = 0 // a root span
	}
	sc.Debug = flags&flagDebug != 0
	if flags&flagSamplingKnown != 0 {
		sc.Sampled = sampledPtr(flags&flagSampled != 0)
	}
	return sc, parent, nil
}

// The Sampled pointers of decoded span contexts: nothing writes through a
// SpanContext's Sampled pointer, so two shared values do.
var sampledTrue, sampledFalse = true, false

func sampledPtr(s bool) *bool {
	if s {
		return &sampledTrue
	}
	return &sampledFalse
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
