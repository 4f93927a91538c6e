package proxy

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// Context is the Linkerd context carried by one request's l5d-* headers.
type Context struct {
	// Dtab is the request's local dtab: every l5d-ctx-dtab value followed
	// by every l5d-dtab value, so user entries win.
	Dtab dtab.Dtab
	// Trace is the caller's span, if it sent one that parsed.
	Trace    Trace
	HasTrace bool
	// Deadline is the strictest inbound l5d-ctx-deadline, if any.
	Deadline    Deadline
	HasDeadline bool
}

// DtabError says an l5d-dtab or l5d-ctx-dtab header did not parse; the
// edge answers 400.
type DtabError struct {
	Header string
	Value  string
	Err    error
}

func (e *DtabError) Error() string {
	return fmt.Sprintf("Invalid %s header %q: %v", strings.ToLower(e.Header), e.Value, e.Err)
}

func (e *DtabError) Unwrap() error { return e.Err }

// ReadContext reads and removes the context headers of an inbound request
// (headers-admin.md §1 step 2). With clear (servers[].clearContext) every
// l5d-* header is removed unread and the returned Context is empty.
func ReadContext(h http.Header, clear bool) (Context, error) {
	var c Context
	if clear {
		StripL5d(h)
		return c, nil
	}
	if len(h) <= 16 && !hasContextKeys(h) {
		return c, nil // the common case: nine map operations saved
	}
	var err error
	for _, k := range [...]string{HeaderCtxDtab, HeaderDtab} {
		for _, v := range h[k] {
			d, perr := dtab.Parse(v)
			if perr != nil {
				if err == nil {
					err = &DtabError{Header: k, Value: v, Err: perr}
				}
				continue
			}
			c.Dtab = append(c.Dtab, d...)
		}
		delete(h, k)
	}
	for _, v := range h[HeaderCtxDeadline] {
		if d, ok := ParseDeadline(v); ok {
			c.Deadline, c.HasDeadline = c.Deadline.combine(d, c.HasDeadline), true
		}
	}
	delete(h, HeaderCtxDeadline)
	if vs := h[HeaderCtxTrace]; len(vs) > 0 {
		c.Trace, c.HasTrace = ParseTrace(vs[len(vs)-1])
	}
	delete(h, HeaderCtxTrace)
	delete(h, HeaderSample)
	return c, err
}

// WriteOutbound writes the context headers of a forwarded request
// (headers-admin.md §1 outbound table): a child span in l5d-ctx-trace,
// l5d-reqid, the local dtab as l5d-ctx-dtab (when non-empty) and the
// deadline.
func (c *Context) WriteOutbound(h http.Header) {
	child := c.Trace.Child(c.HasTrace)
	// One allocation for both values and one for their slices.
	var buf [56 + 16]byte
	n := child.appendEncoded(buf[:0])
	all := string(hex.AppendEncode(n, be64(child.TraceID)))
	enc := len(n)
	vals := new([2]string)
	vals[0], vals[1] = all[:enc], all[enc:]
	h[HeaderCtxTrace] = vals[0:1:1]
	h[HeaderReqID] = vals[1:2:2]
	c.WriteOutboundContext(h)
}

// WriteOutboundContext writes the context headers of a forwarded request
// except the trace ones: the local dtab as l5d-ctx-dtab (when non-empty)
// and the deadline. A router whose telemetry.Tracer writes l5d-ctx-trace
// and l5d-reqid (one source of truth for the trace) uses it instead of
// WriteOutbound.
func (c *Context) WriteOutboundContext(h http.Header) {
	if len(c.Dtab) > 0 {
		h[HeaderCtxDtab] = []string{c.Dtab.String()}
	}
	if c.HasDeadline {
		h[HeaderCtxDeadline] = []string{c.Deadline.String()}
	}
}

// Deadline is an l5d-ctx-deadline value: epoch nanoseconds.
type Deadline struct {
	Start, Deadline int64
}

// ParseDeadline parses "<start-nanos> <deadline-nanos>".
func ParseDeadline(v string) (Deadline, bool) {
	a, b, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return Deadline{}, false
	}
	s, err1 := strconv.ParseInt(a, 10, 64)
	d, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil {
		return Deadline{}, false
	}
	return Deadline{Start: s, Deadline: d}, true
}

// combine returns the strictest of d (when has) and o, as Finagle's
// Deadline.combined does: the latest start and the earliest deadline.
func (d Deadline) combine(o Deadline, has bool) Deadline {
	if !has {
		return o
	}
	return Deadline{Start: max(d.Start, o.Start), Deadline: min(d.Deadline, o.Deadline)}
}

func (d Deadline) String() string {
	return strconv.FormatInt(d.Start, 10) + " " + strconv.FormatInt(d.Deadline, 10)
}

// Trace is a Finagle trace id as carried in l5d-ctx-trace.
type Trace struct {
	SpanID, ParentID, TraceID uint64
	// TraceIDHigh is the high half of a 128-bit trace id (0 if 64-bit).
	TraceIDHigh uint64
	Flags       uint64
}

// ParseTrace decodes the base64 l5d-ctx-trace value (32 or 40 bytes). An
// unparsable value is ignored (ok=false): a new trace starts.
func ParseTrace(v string) (Trace, bool) {
	v = strings.TrimSpace(v)
	// Decode writes up to DecodedLen bytes and panics past dst: bound the
	// caller's value first (40 bytes encode to 56 characters).
	var buf [42]byte
	if len(v) > base64.StdEncoding.EncodedLen(40) {
		return Trace{}, false
	}
	n, err := base64.StdEncoding.Decode(buf[:], []byte(v))
	if err != nil || (n != 32 && n != 40) {
		return Trace{}, false
	}
	t := Trace{
		SpanID:   binary.BigEndian.Uint64(buf[0:8]),
		ParentID: binary.BigEndian.Uint64(buf[8:16]),
		TraceID:  binary.BigEndian.Uint64(buf[16:24]),
		Flags:    binary.BigEndian.Uint64(buf[24:32]),
	}
	if n == 40 {
		t.TraceIDHigh = binary.BigEndian.Uint64(buf[32:40])
	}
	return t, true
}

// Child returns a new span below t, or a new root span when !has.
func (t Trace) Child(has bool) Trace {
	id := randomID()
	if !has {
		return Trace{SpanID: id, ParentID: id, TraceID: id}
	}
	return Trace{SpanID: id, ParentID: t.SpanID, TraceID: t.TraceID, TraceIDHigh: t.TraceIDHigh, Flags: t.Flags}
}

// Encode returns the base64 l5d-ctx-trace value.
func (t Trace) Encode() string {
	var b [56]byte
	return string(t.appendEncoded(b[:0]))
}

func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// appendEncoded appends the base64 l5d-ctx-trace value to dst.
func (t Trace) appendEncoded(dst []byte) []byte {
	var buf [40]byte
	binary.BigEndian.PutUint64(buf[0:8], t.SpanID)
	binary.BigEndian.PutUint64(buf[8:16], t.ParentID)
	binary.BigEndian.PutUint64(buf[16:24], t.TraceID)
	binary.BigEndian.PutUint64(buf[24:32], t.Flags)
	n := 32
	if t.TraceIDHigh != 0 {
		binary.BigEndian.PutUint64(buf[32:40], t.TraceIDHigh)
		n = 40
	}
	return base64.StdEncoding.AppendEncode(dst, buf[:n])
}

// ReqID returns the l5d-reqid value: the trace id as 16 lower-case hex digits.
func (t Trace) ReqID() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], t.TraceID)
	return hex.EncodeToString(b[:])
}

// randomID returns a non-zero span id. Trace ids need to be unique, not
// unpredictable, so the fast generator is enough.
func randomID() uint64 {
	for {
		if id := rand.Uint64(); id != 0 {
			return id
		}
	}
}

// hasContextKeys reports whether h holds any header ReadContext reads.
func hasContextKeys(h http.Header) bool {
	for k := range h {
		switch k {
		case HeaderCtxDtab, HeaderDtab, HeaderCtxDeadline, HeaderCtxTrace, HeaderSample:
			return true
		}
	}
	return false
}
