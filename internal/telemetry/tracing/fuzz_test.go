package tracing

import (
	"testing"

	"github.com/openzipkin/zipkin-go/model"
)

// FuzzDecodeCtxTrace: decoding never panics, and whatever decodes
// re-encodes to a value that decodes to the same context.
func FuzzDecodeCtxTrace(f *testing.F) {
	f.Add("AAAAAAAAAAEAAAAAAAAAAgAAAAAAAAADAAAAAAAAAAY=")
	f.Add(EncodeCtxTrace(model.SpanContext{TraceID: model.TraceID{High: 1, Low: 2}, ID: 3}))
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, v string) {
		sc, err := DecodeCtxTrace(v)
		if err != nil {
			return
		}
		again, err := DecodeCtxTrace(EncodeCtxTrace(sc))
		if err != nil || again.TraceID != sc.TraceID || again.ID != sc.ID || again.Debug != sc.Debug ||
			(again.ParentID == nil) != (sc.ParentID == nil) || (again.Sampled == nil) != (sc.Sampled == nil) {
			t.Fatalf("%q: %+v re-decoded as %+v (%v)", v, sc, again, err)
		}
	})
}
