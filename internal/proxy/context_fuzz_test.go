package proxy

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzParseContextHeaders: arbitrary l5d-ctx-deadline and l5d-ctx-trace
// values (both come from callers) never panic; an accepted value prints
// back to a value that parses to the same thing; a trace is accepted
// exactly when it is base64 of 32 or 40 bytes.
func FuzzParseContextHeaders(f *testing.F) {
	tr := Trace{SpanID: 1, ParentID: 2, TraceID: 3, Flags: 6}
	f.Add("1700000000000000000 1700000001000000000", tr.Encode())
	f.Add(" 1 2 ", Trace{SpanID: 1, TraceIDHigh: 9}.Encode())
	f.Add("1", "")
	f.Add("-5 +7", "AAAA")
	f.Add("a b", strings.Repeat("A", 80))
	f.Add("9223372036854775808 0", strings.Repeat("AAAA", 14)+"====")
	f.Fuzz(func(t *testing.T, deadline, trace string) {
		if d, ok := ParseDeadline(deadline); ok {
			back, ok := ParseDeadline(d.String())
			if !ok || back != d {
				t.Fatalf("ParseDeadline(%q) = %+v; %q parses to %+v, %v", deadline, d, d.String(), back, ok)
			}
		}
		tc, ok := ParseTrace(trace)
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(trace))
		if want := err == nil && (len(raw) == 32 || len(raw) == 40); ok != want {
			t.Fatalf("ParseTrace(%q) ok = %v, want %v", trace, ok, want)
		}
		if !ok {
			return
		}
		back, ok := ParseTrace(tc.Encode())
		if !ok || back != tc {
			t.Fatalf("ParseTrace(%q) = %+v; its encoding %q parses to %+v, %v", trace, tc, tc.Encode(), back, ok)
		}
	})
}
