package http1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func mustURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// parseWritten reads back a written request head.
func parseWritten(t *testing.T, b []byte) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("written request does not parse: %v\n%s", err, b)
	}
	return r
}

// TestWriteRequestHeadMatchesRequestWrite checks that the fast writer
// sends what Request.Write sends (up to the order of header fields), for
// the requests it accepts.
func TestWriteRequestHeadMatchesRequestWrite(t *testing.T) {
	cases := []*http.Request{
		{Method: "GET", URL: mustURL(t, "http://b/"), Host: "hello", Header: http.Header{
			"Accept": {"*/*"}, "User-Agent": {""}, "L5d-Dst-Service": {"/svc/hello"}, "Via": {"1.1 linnet"}}},
		{Method: "GET", URL: mustURL(t, "http://b/a%2Fb/c?q=1&r=%20"), Host: "h:8080",
			Header: http.Header{"X-Multi": {"a", " b ", "c\r\nEvil: 1"}, "Cookie": {"x=1"}}},
		{Method: "HEAD", URL: mustURL(t, "http://b"), Header: http.Header{}},
		{Method: "DELETE", URL: mustURL(t, "http://b/x?"), Host: "x", Header: http.Header{"User-Agent": {"curl/8"}}},
		{Method: "POST", URL: mustURL(t, "http://b/p"), Host: "x", Body: http.NoBody, Header: http.Header{}},
		{Method: "OPTIONS", URL: mustURL(t, "http://b/o"), Host: "x", Close: true, Header: http.Header{"Connection": {"keep-alive"}}},
		{Method: "GET", URL: mustURL(t, "http://b/c"), Host: "x", Close: true, Header: http.Header{"Connection": {"close"}}},
		{Method: "", URL: mustURL(t, "http://[::1]:80/v6"), Header: http.Header{"Bad Name": {"dropped"}, "Ok": {"\tkept\t"}}},
	}
	for i, req := range cases {
		var fast bytes.Buffer
		bw := bufio.NewWriter(&fast)
		if !writeRequestHead(bw, req) {
			t.Fatalf("case %d: not handled", i)
		}
		bw.Flush()
		var std bytes.Buffer
		if err := req.Write(&std); err != nil {
			t.Fatalf("case %d: Request.Write: %v", i, err)
		}
		// The request line and Host are byte for byte the same.
		fl, _, _ := strings.Cut(fast.String(), "\r\n")
		sl, _, _ := strings.Cut(std.String(), "\r\n")
		if fl != sl {
			t.Errorf("case %d: request line %q, Request.Write %q", i, fl, sl)
		}
		f, s := parseWritten(t, fast.Bytes()), parseWritten(t, std.Bytes())
		if f.Host != s.Host || f.Method != s.Method || f.RequestURI != s.RequestURI || f.Close != s.Close ||
			f.ContentLength != s.ContentLength || !reflect.DeepEqual(f.Header, s.Header) {
			t.Errorf("case %d:\nfast:\n%s\nRequest.Write:\n%s", i, fast.String(), std.String())
		}
		if len(fast.String()) != len(std.String()) {
			t.Errorf("case %d: %d bytes, Request.Write %d", i, fast.Len(), std.Len())
		}
	}
}

func TestWriteRequestHeadDeclines(t *testing.T) {
	traced := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{})
	for name, req := range map[string]*http.Request{
		"body":       {Method: "POST", URL: mustURL(t, "http://b/"), Body: io.NopCloser(strings.NewReader("x")), ContentLength: 1},
		"chunked":    {Method: "POST", URL: mustURL(t, "http://b/"), TransferEncoding: []string{"chunked"}},
		"trailer":    {Method: "GET", URL: mustURL(t, "http://b/"), Trailer: http.Header{"X": nil}},
		"connect":    {Method: "CONNECT", URL: &url.URL{Host: "b:443"}},
		"opaque":     {Method: "GET", URL: &url.URL{Scheme: "http", Opaque: "//b/x"}},
		"punycode":   {Method: "GET", URL: mustURL(t, "http://b/"), Host: "bücher.example"},
		"zone":       {Method: "GET", URL: mustURL(t, "http://[fe80::1%25eth0]:80/")},
		"ctl in uri": {Method: "GET", URL: &url.URL{Scheme: "http", Host: "b", Path: "/a", RawQuery: "x=\x01"}},
		"trace":      (&http.Request{Method: "GET", URL: mustURL(t, "http://b/")}).WithContext(traced),
	} {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		if writeRequestHead(bw, req) {
			t.Errorf("%s: handled", name)
		}
		bw.Flush()
		if buf.Len() != 0 {
			t.Errorf("%s: wrote %q before declining", name, buf.String())
		}
	}
}

// TestWriteRequestHeadAllocs holds the fast writer to zero allocations
// for a typical proxied request.
func TestWriteRequestHeadAllocs(t *testing.T) {
	req := &http.Request{Method: "GET", URL: mustURL(t, "http://b/path?q=1"), Host: "hello", Header: http.Header{
		"Accept": {"*/*"}, "User-Agent": {""}, "L5d-Dst-Service": {"/svc/hello"}, "Via": {"1.1 linnet"}}}
	bw := bufio.NewWriterSize(io.Discard, 4<<10)
	if n := testing.AllocsPerRun(200, func() {
		writeRequestHead(bw, req)
		bw.Flush()
	}); n != 0 {
		t.Errorf("%v allocations per request head, want 0", n)
	}
}

func BenchmarkWriteRequestHead(b *testing.B) {
	req := &http.Request{Method: "GET", URL: mustURL(b, "http://b/path?q=1"), Host: "hello", Header: http.Header{
		"Accept": {"*/*"}, "User-Agent": {""}, "L5d-Dst-Service": {"/svc/hello"}, "Via": {"1.1 linnet"},
		"L5d-Ctx-Trace": {"AAAAAAAAAAEAAAAAAAAAAgAAAAAAAAAD"}, "L5d-Reqid": {"0000000000000001"}}}
	bw := bufio.NewWriterSize(io.Discard, 4<<10)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			writeRequestHead(bw, req)
			bw.Flush()
		}
	})
	b.Run("Request.Write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req.Write(bw)
			bw.Flush()
		}
	})
}
