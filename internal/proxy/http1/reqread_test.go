package http1

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// reqCases are request heads as a caller sends them, each followed by
// what comes next on the connection.
var reqCases = []struct {
	name, wire string
	fast       bool // whether readRequestHead should take it
}{
	{"plain", "GET / HTTP/1.1\r\nHost: www.hello.world\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\nNEXT", true},
	{"path and query", "GET /a/b-c_d.e~f/$&+,:;=@?x=1&y=%41+b HTTP/1.1\r\nHost: h:8080\r\n\r\n", true},
	{"http/1.0 keep-alive", "GET /x HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", true},
	{"http/1.0 close", "GET /x HTTP/1.0\r\nHost: h\r\n\r\n", true},
	{"connection close", "DELETE /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", true},
	{"connection list", "GET /x HTTP/1.1\r\nHost: h\r\nConnection: te, Close\r\nTE: trailers\r\n\r\n", true},
	{"odd method token", "PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"options", "OPTIONS /x HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"lower-case keys, duplicates, spacing", "GET / HTTP/1.1\r\nhost: h\r\nx-FOO-bar: a\r\nX-Foo-Bar:b \r\nl5d-dtab:\t/svc => /x;\t\r\nEmpty:\r\n\r\n", true},
	{"l5d headers", "GET / HTTP/1.1\r\nHost: h\r\nl5d-ctx-trace: AAAAAAAAAAEAAAAAAAAAAQAAAAAAAAABAAAAAAAAAAY=\r\nl5d-ctx-deadline: 1 2\r\nl5d-reqid: abc\r\n\r\n", true},
	{"obs-text value", "GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9\r\n\r\n", true},
	{"many fields", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: 1\r\nX-B: 2\r\nX-C: 3\r\n", 6) + "\r\n", true},

	{"absolute form", "GET http://hello/ HTTP/1.1\r\nHost: hello\r\n\r\n", false},
	{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"connect", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", false},
	{"escaped path", "GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"bare question mark", "GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"double slash", "GET //a HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"re-escaped byte", "GET /a!b HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"no host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", false},
	{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false},
	{"bad host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", false},
	{"pragma", "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n", false},
	{"trailer", "GET / HTTP/1.1\r\nHost: h\r\nTrailer: X\r\n\r\n", false},
	{"http/2 version", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", false},
	{"bad method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"extra space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n", false},
	{"bare LF", "GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", false},
	{"space in name", "GET / HTTP/1.1\r\nHost: h\r\nX A: 1\r\n\r\n", false},
	{"control byte", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n", false},
	{"no colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n", false},
}

// TestReadRequestHeadMatchesReadRequest reads each head with
// readRequestHead and with http.ReadRequest: what readRequestHead takes
// must come out the same, field by field, and leave the same bytes on the
// connection; what it declines must leave the reader untouched.
func TestReadRequestHeadMatchesReadRequest(t *testing.T) {
	for _, tc := range reqCases {
		t.Run(tc.name, func(t *testing.T) {
			ok, msg := compareReadRequest(tc.wire)
			if msg != "" {
				t.Fatal(msg)
			}
			if ok != tc.fast {
				t.Fatalf("readRequestHead took it: %v, want %v", ok, tc.fast)
			}
		})
	}
}

// compareReadRequest runs both parsers over wire. It returns whether the
// fast one took it, and a description of any difference ("" if none).
func compareReadRequest(wire string) (took bool, diff string) {
	fbr := bufio.NewReaderSize(strings.NewReader(wire), 4<<10)
	head, ok, err := peekHead(fbr)
	if err != nil || !ok || !simpleRequest(head) {
		return false, ""
	}
	got, ok := readRequestHead(fbr, head)
	if !ok {
		if b, _ := fbr.Peek(fbr.Buffered()); !strings.HasPrefix(wire, string(b)) || len(b) < len(head) {
			return false, "declined, but consumed input"
		}
		return false, ""
	}
	wbr := bufio.NewReader(strings.NewReader(wire))
	want, err := http.ReadRequest(wbr)
	if err != nil {
		return true, "http.ReadRequest: " + err.Error() + " (the fast path accepted what net/http refuses)"
	}
	var d []string
	check := func(what string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			d = append(d, what+": got "+sprint(g)+", want "+sprint(w))
		}
	}
	check("Method", got.Method, want.Method)
	check("URL", *got.URL, *want.URL)
	check("Proto", got.Proto, want.Proto)
	check("ProtoMajor", got.ProtoMajor, want.ProtoMajor)
	check("ProtoMinor", got.ProtoMinor, want.ProtoMinor)
	check("Header", got.Header, want.Header)
	check("Host", got.Host, want.Host)
	check("RequestURI", got.RequestURI, want.RequestURI)
	check("Close", got.Close, want.Close)
	check("ContentLength", got.ContentLength, want.ContentLength)
	check("TransferEncoding", got.TransferEncoding, want.TransferEncoding)
	check("Trailer", got.Trailer, want.Trailer)
	check("Body is NoBody", got.Body == http.NoBody, want.Body == http.NoBody)
	gb, _ := io.ReadAll(got.Body)
	wb, _ := io.ReadAll(want.Body)
	check("body", string(gb), string(wb))
	grest, _ := io.ReadAll(fbr)
	wrest, _ := io.ReadAll(wbr)
	check("left on the connection", string(grest), string(wrest))
	return true, strings.Join(d, "\n")
}

func sprint(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%+v", v)
}

// FuzzReadRequestHead holds readRequestHead to http.ReadRequest on
// arbitrary input: whatever the fast parser takes, net/http must take
// too and read the same way.
func FuzzReadRequestHead(f *testing.F) {
	for _, tc := range reqCases {
		f.Add(tc.wire)
	}
	f.Fuzz(func(t *testing.T, wire string) {
		if _, diff := compareReadRequest(wire); diff != "" {
			t.Fatalf("%q:\n%s", wire, diff)
		}
	})
}

func TestReadRequestHeadAllocs(t *testing.T) {
	wire := "GET /index.html?q=1 HTTP/1.1\r\nHost: www.hello.world\r\nUser-Agent: wrk\r\nAccept: */*\r\nl5d-reqid: 1\r\n\r\n"
	rd := strings.NewReader(wire)
	br := bufio.NewReaderSize(rd, 4<<10)
	// The head string, the header map (two), the value slice, and the
	// request with its URL; http.ReadRequest makes about 10.
	n := testing.AllocsPerRun(200, func() {
		rd.Reset(wire)
		br.Reset(rd)
		head, _, _ := peekHead(br)
		if _, ok := readRequestHead(br, head); !ok {
			t.Fatal("declined")
		}
	})
	if n > 5 {
		t.Errorf("%v allocations per request head, want at most 5", n)
	}
}

func BenchmarkReadRequestHead(b *testing.B) {
	wire := "GET /index.html?q=1 HTTP/1.1\r\nHost: www.hello.world\r\nUser-Agent: wrk\r\nAccept: */*\r\nl5d-reqid: 1\r\n\r\n"
	rd := strings.NewReader(wire)
	br := bufio.NewReaderSize(rd, 4<<10)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(wire)
			br.Reset(rd)
			head, _, _ := peekHead(br)
			if _, ok := readRequestHead(br, head); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(wire)
			br.Reset(rd)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
