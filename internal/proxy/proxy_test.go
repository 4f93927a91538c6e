package proxy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/middleware"
	"github.com/linnet-mesh/linnet/internal/router"
)

func TestReadContext(t *testing.T) {
	h := http.Header{}
	h.Add("l5d-ctx-dtab", "/a=>/b")
	h.Add("l5d-dtab", "/c=>/d;/e=>/f")
	h.Add("l5d-ctx-dtab", "/g=>/h")
	h.Add("l5d-ctx-deadline", "100 900")
	h.Add("l5d-ctx-deadline", "200 500")
	h.Add("l5d-ctx-deadline", "garbage")
	h.Add("l5d-sample", "0.5")
	h.Add("l5d-ctx-other", "kept")
	tr := Trace{SpanID: 1, ParentID: 2, TraceID: 3, Flags: 6}
	h.Set("l5d-ctx-trace", tr.Encode())
	c, err := ReadContext(h, false)
	if err != nil {
		t.Fatal(err)
	}
	// Context entries first, user entries last (they win).
	if got := c.Dtab.String(); got != "/a=>/b;/g=>/h;/c=>/d;/e=>/f" {
		t.Errorf("local dtab = %s", got)
	}
	if !c.HasDeadline || c.Deadline != (Deadline{200, 500}) {
		t.Errorf("deadline = %+v; want the strictest, 200 500", c.Deadline)
	}
	if !c.HasTrace || c.Trace != tr {
		t.Errorf("trace = %+v; want %+v", c.Trace, tr)
	}
	for _, k := range []string{"L5d-Ctx-Dtab", "L5d-Dtab", "L5d-Ctx-Deadline", "L5d-Sample", "L5d-Ctx-Trace"} {
		if _, ok := h[k]; ok {
			t.Errorf("%s not removed", k)
		}
	}
	if h.Get("l5d-ctx-other") != "kept" {
		t.Errorf("unknown l5d-ctx-* header must pass through")
	}
	out := http.Header{}
	c.WriteOutbound(out)
	if out.Get("l5d-ctx-dtab") != "/a=>/b;/g=>/h;/c=>/d;/e=>/f" || out.Get("l5d-ctx-deadline") != "200 500" {
		t.Errorf("outbound = %v", out)
	}
	child, ok := ParseTrace(out.Get("l5d-ctx-trace"))
	if !ok || child.TraceID != 3 || child.ParentID != 1 || child.SpanID == 1 || child.Flags != 6 {
		t.Errorf("child span = %+v; want trace 3, parent 1, a new span id", child)
	}
	if out.Get("l5d-reqid") != "0000000000000003" {
		t.Errorf("l5d-reqid = %q", out.Get("l5d-reqid"))
	}
}

func TestReadContextErrorsAndClear(t *testing.T) {
	h := http.Header{"L5d-Dtab": {"/a=>"}}
	_, err := ReadContext(h, false)
	var de *DtabError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "l5d-dtab") {
		t.Errorf("err = %v; want a DtabError naming l5d-dtab", err)
	}
	h = http.Header{"L5d-Dtab": {""}}
	if c, err := ReadContext(h, false); err != nil || len(c.Dtab) != 0 {
		t.Errorf("empty l5d-dtab: %v %v; want an empty dtab, no error", c.Dtab, err)
	}
	h = http.Header{"L5d-Dtab": {"/a=>"}, "L5D-Whatever": {"x"}, "L5d-Ctx-Trace": {"x"}, "Other": {"y"}}
	c, err := ReadContext(h, true)
	if err != nil || len(c.Dtab) != 0 || c.HasTrace || len(h) != 1 {
		t.Errorf("clearContext: %v %+v %v; want every l5d header gone unread", err, c, h)
	}
	if _, ok := ParseTrace("not base64!"); ok {
		t.Errorf("garbage trace parsed")
	}
	root := Trace{}.Child(false)
	if root.SpanID == 0 || root.SpanID != root.TraceID || root.ParentID != root.SpanID {
		t.Errorf("root span = %+v; want span = trace = parent", root)
	}
}

func TestHopByHop(t *testing.T) {
	h := http.Header{
		"Connection":          {"keep-alive, X-Private", "Upgrade"},
		"X-Private":           {"secret"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authorization": {"x"},
		"Te":                  {"gzip, trailers"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"websocket"},
		"X-Kept":              {"1"},
	}
	up := PrepareOutbound(h)
	if up != "websocket" {
		t.Errorf("upgrade = %q", up)
	}
	want := http.Header{"Te": {"trailers"}, "Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "X-Kept": {"1"}}
	if len(h) != len(want) {
		t.Fatalf("after PrepareOutbound: %v; want %v", h, want)
	}
	for k, v := range want {
		if h.Get(k) != v[0] {
			t.Errorf("%s = %q; want %q", k, h.Get(k), v[0])
		}
	}
	h = http.Header{"Te": {"gzip"}, "Connection": {"close"}}
	if PrepareOutbound(h) != "" || len(h) != 0 {
		t.Errorf("plain request: %v; want no Te, no Connection", h)
	}
}

func TestVia(t *testing.T) {
	h := http.Header{}
	AppendVia(h, 1, 1)
	AppendVia(h, 1, 0)
	if got := h.Get("Via"); got != "1.1 linkerd, 1.0 linkerd" {
		t.Errorf("Via = %q", got)
	}
	if ViaDepth(h) != 2 {
		t.Errorf("depth = %d; want 2", ViaDepth(h))
	}
	fresh := http.Header{}
	AppendVia(fresh, 1, 1)
	if via11Value[0] != "1.1 linkerd" {
		t.Errorf("the shared Via value was modified")
	}
}

func TestErrorResponses(t *testing.T) {
	req := httptest.NewRequest("GET", "/x?y=1", nil)
	req.RemoteAddr = "10.0.0.1:5555"
	nr := &router.NoRouteError{
		Name:   dtab.MustParsePath("/svc/foo"),
		Base:   dtab.MustParse("/svc=>/#/io.l5d.fs"),
		Local:  dtab.MustParse("/svc/foo=>/svc/bar"),
		Reason: "no dtab rule or namer matched the name (~)",
	}
	cases := []struct {
		err       error
		status    int
		msg       string
		retryable bool
	}{
		{&UnidentifiedError{Reason: "Host header is absent"}, 400,
			`Unknown destination: Request("GET /x?y=1", from 10.0.0.1:5555) / Host header is absent`, false},
		{nr, 502, "Unable to route request!\n\nservice name: /svc/foo\nreason: no dtab rule or namer matched the name (~)\n" +
			"dtab:\n  /svc => /#/io.l5d.fs\n  /svc/foo => /svc/bar\nbase dtab:\n  /svc => /#/io.l5d.fs\noverride dtab:\n  /svc/foo => /svc/bar\n", false},
		{&CallDepthError{Max: 3}, 400, "Maximum number of calls (3) has been exceeded. Please check for proxy loops.", false},
		{&middleware.TimeoutError{Kind: middleware.TimeoutTotal}, 503, "", false},
		{&router.BindingTimeoutError{Name: dtab.MustParsePath("/svc/x"), Timeout: "10s"}, 503, "", false},
		{&router.ConnectError{Addr: "1.2.3.4:80", Err: errors.New("refused")}, 502, "", true},
		{errors.New("boom"), 502, "boom", false},
	}
	for _, c := range cases {
		e := MapError(req, c.err)
		if e.Status != c.status || (c.msg != "" && e.Message != c.msg) || e.Retryable != c.retryable {
			t.Errorf("%T: got %d %v %q; want %d %v %q", c.err, e.Status, e.Retryable, e.Message, c.status, c.retryable, c.msg)
		}
	}
	w := httptest.NewRecorder()
	WriteError(w, ErrorResponse{Status: 502, Message: strings.Repeat("a b%", 100)}, false, 64)
	v := w.Header().Get("l5d-err")
	if len(v) > 64 || strings.HasSuffix(v, "%") || strings.HasSuffix(v, "%2") {
		t.Errorf("l5d-err = %q; want at most 64 bytes, no cut escape", v)
	}
	if _, err := url.QueryUnescape(v); err != nil {
		t.Errorf("l5d-err %q does not decode: %v", v, err)
	}
	if w.Body.Len() != 400 || w.Header().Get("Content-Type") != "text/plain" {
		t.Errorf("body %d bytes, type %q", w.Body.Len(), w.Header().Get("Content-Type"))
	}
}
