package e2e

// Conformance of the HTTP/1.1 router's header handling with
// spec/headers-admin.md §1–§4 and spec/dtab.md §9.2, driven through the
// real binary. Each case is one raw request (so that repeated headers,
// HTTP/1.0 and absolute-form targets are sent exactly as written) to one
// of the router's servers; echo backends answer with what they received.
// docs/compatibility.md maps every rule to its case here.

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// confSeen is what an echo backend received, sent back as its body.
type confSeen struct {
	Backend string      `json:"backend"`
	Host    string      `json:"host"`
	URI     string      `json:"uri"`
	Proto   string      `json:"proto"`
	Header  http.Header `json:"header"`
}

// confEcho starts a loopback backend named name that answers every
// request with a confSeen document. The caller steers the response with
// x-reply-status (status code), x-reply-via (a Via header of the
// backend's own) and x-reply-sleep (a delay). Every response also
// carries hop-by-hop headers (which the router must drop) and an l5d-*
// header (which only clearContext drops).
func confEcho(t *testing.T, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.Header.Get("X-Reply-Sleep")); err == nil {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Connection", "X-Hop-Resp")
		h.Set("X-Hop-Resp", "1")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("L5d-Backend", name)
		if v := r.Header.Get("X-Reply-Via"); v != "" {
			h.Set("Via", v)
		}
		status := http.StatusOK
		if s := r.Header.Get("X-Reply-Status"); s != "" {
			fmt.Sscan(s, &status)
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(confSeen{Backend: name, Host: r.Host, URI: r.RequestURI, Proto: r.Proto, Header: r.Header})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// confResult is the router's answer to one raw request.
type confResult struct {
	status int
	header http.Header
	body   string
	seen   *confSeen // what the backend received, when a backend answered
}

// confRaw sends request (a complete request head) on a new connection
// to port and reads the response.
func confRaw(t *testing.T, port int, request string) confResult {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", request, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of the response to %q: %v", request, err)
	}
	r := confResult{status: resp.StatusCode, header: resp.Header, body: string(b)}
	var s confSeen
	if resp.Header.Get("L5d-Err") == "" && json.Unmarshal(b, &s) == nil && s.Backend != "" {
		r.seen = &s
	}
	return r
}

// confRequest builds a request head: method and target, then the header
// lines in order (a header may repeat), Host first unless host is "".
func confRequest(proto, target, host string, hdr [][2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s %s\r\n", target, proto)
	if host != "" {
		fmt.Fprintf(&b, "Host: %s\r\n", host)
	}
	for _, kv := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[0], kv[1])
	}
	b.WriteString("\r\n")
	return b.String()
}

// l5dNames returns the lower-cased l5d-* header names of h, sorted.
func l5dNames(h http.Header) []string {
	var out []string
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "l5d-") {
			out = append(out, strings.ToLower(k))
		}
	}
	slices.Sort(out)
	return out
}

// traceHeader encodes an l5d-ctx-trace value (span, parent, trace,
// flags, and the high trace id half when hi != 0).
func traceHeader(span, parent, trace, flags, hi uint64) string {
	b := make([]byte, 32, 40)
	binary.BigEndian.PutUint64(b[0:], span)
	binary.BigEndian.PutUint64(b[8:], parent)
	binary.BigEndian.PutUint64(b[16:], trace)
	binary.BigEndian.PutUint64(b[24:], flags)
	if hi != 0 {
		b = binary.BigEndian.AppendUint64(b, hi)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// decodedTrace is an l5d-ctx-trace value as the backend received it.
type decodedTrace struct {
	span, parent, trace, flags, hi uint64
	size                           int
}

func decodeTrace(t *testing.T, v string) decodedTrace {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || (len(b) != 32 && len(b) != 40) {
		t.Fatalf("l5d-ctx-trace %q: not base64 of 32 or 40 bytes (%d bytes, %v)", v, len(b), err)
	}
	d := decodedTrace{
		span: binary.BigEndian.Uint64(b[0:]), parent: binary.BigEndian.Uint64(b[8:]),
		trace: binary.BigEndian.Uint64(b[16:]), flags: binary.BigEndian.Uint64(b[24:]), size: len(b),
	}
	if len(b) == 40 {
		d.hi = binary.BigEndian.Uint64(b[32:])
	}
	return d
}

// checkReqID checks that l5d-reqid is the trace id as 16 lower-case hex
// digits.
func checkReqID(t *testing.T, s *confSeen, tr decodedTrace) {
	t.Helper()
	var want [8]byte
	binary.BigEndian.PutUint64(want[:], tr.trace)
	if got := s.Header.Get("L5d-Reqid"); got != hex.EncodeToString(want[:]) {
		t.Errorf("l5d-reqid %q; want the trace id %016x", got, tr.trace)
	}
}

// confHeaderRouter is the router under test: router "web" with a plain
// server, a clearContext server and a server with maxCallDepth 3, and
// router "tight" (maxHeadersKB 1, totalTimeoutMs 300), router "attempt"
// (requestAttemptTimeoutMs 300) and router "errcap" (maxErrResponseKB 1).
type confHeaderRouter struct {
	plain, clear, depth, tight, attempt, errcap int
	a, b, dead                                  int
}

func startConfHeaderRouter(t *testing.T) confHeaderRouter {
	t.Helper()
	r := confHeaderRouter{
		a: confEcho(t, "a"), b: confEcho(t, "b"), dead: linnettest.FreePort(t),
		plain: linnettest.FreePort(t), clear: linnettest.FreePort(t), depth: linnettest.FreePort(t), tight: linnettest.FreePort(t),
		attempt: linnettest.FreePort(t), errcap: linnettest.FreePort(t),
	}
	admin := linnettest.FreePort(t)
	cfg := fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: http
  label: web
  dtab: |
    /svc/a => /$/inet/127.0.0.1/%d;
    /svc/b => /$/inet/127.0.0.1/%d;
    /svc/res => /$/inet/127.0.0.1/%d/x/y;
    /svc/dead => /$/inet/127.0.0.1/%d;
    /svc/neg => ~;
  servers:
  - {ip: 127.0.0.1, port: %d}
  - {ip: 127.0.0.1, port: %d, clearContext: true}
  - {ip: 127.0.0.1, port: %d, maxCallDepth: 3}
- protocol: http
  label: tight
  maxHeadersKB: 1
  service: {totalTimeoutMs: 300}
  dtab: |
    /svc/a => /$/inet/127.0.0.1/%d;
    /svc/neg => ~;
  servers:
  - {ip: 127.0.0.1, port: %d}
- protocol: http
  label: attempt
  client: {requestAttemptTimeoutMs: 300}
  dtab: /svc/a => /$/inet/127.0.0.1/%d;
  servers:
  - {ip: 127.0.0.1, port: %d}
- protocol: http
  label: errcap
  maxErrResponseKB: 1
  dtab: /svc/neg => ~;
  servers:
  - {ip: 127.0.0.1, port: %d}
`, admin, r.a, r.b, r.a, r.dead, r.plain, r.clear, r.depth, r.a, r.tight, r.a, r.attempt, r.errcap)
	linnettest.StartRouter(t, cfg, admin)
	return r
}

// TestHeadersConformance: request headers in → what the backend saw and
// what the caller got back, one case per rule of headers-admin.md §1–§3
// and dtab.md §9.2.
func TestHeadersConformance(t *testing.T) {
	t.Parallel()
	r := startConfHeaderRouter(t)
	now := time.Now().UnixNano()
	soon, later := now+int64(30*time.Second), now+int64(60*time.Second)
	inet := func(port int) string { return fmt.Sprintf("/$/inet/127.0.0.1/%d", port) }

	type tc struct {
		name   string
		port   int    // server; default r.plain
		proto  string // default HTTP/1.1
		target string // default /
		host   string
		hdr    [][2]string

		status  int               // default 200
		backend string            // which backend answered ("" = none)
		sawL5d  []string          // exact l5d-* names the backend saw (nil: not checked)
		saw     map[string]string // header → exact value the backend saw ("" = absent)
		resp    map[string]string // response header → exact value ("" = absent)
		respL5d []string          // exact l5d-* names of the response (nil: not checked)
		check   func(t *testing.T, res confResult)
	}
	cases := []tc{{
		// §1 "Expected downstream view": exactly these l5d headers.
		name: "default server: the walkthrough's downstream view", host: "a",
		hdr:     [][2]string{{"l5d-dtab", "/foo=>/bar"}, {"l5d-ctx-thing", "x"}},
		backend: "a",
		sawL5d:  []string{"l5d-ctx-dtab", "l5d-ctx-thing", "l5d-ctx-trace", "l5d-dst-client", "l5d-dst-service", "l5d-reqid"},
		saw: map[string]string{"L5d-Ctx-Dtab": "/foo=>/bar", "L5d-Ctx-Thing": "x", "L5d-Dst-Service": "/svc/a",
			"L5d-Dst-Client": inet(r.a), "L5d-Dst-Residual": "", "L5d-Dtab": "", "Via": "1.1 linkerd",
			// §2.7: Linkerd never adds these.
			"X-Forwarded-For": "", "X-Forwarded-Proto": "", "X-Forwarded-Host": "", "Forwarded": ""},
		// §1 response side: Via appended, classified, no l5d-err on an
		// application response, hop-by-hop headers of the response gone.
		resp: map[string]string{"Via": "1.1 linkerd", "L5d-Success-Class": "1.0", "L5d-Err": "", "L5d-Retryable": "",
			"L5d-Backend": "a", "X-Hop-Resp": "", "Proxy-Authenticate": "", "Keep-Alive": "", "Connection": ""},
	}, {
		// §3: only the informational and trace headers reach the app; no
		// l5d-* header reaches the untrusted caller.
		name: "clearContext server: only dst, reqid and a new trace", port: r.clear, host: "a",
		hdr: [][2]string{{"l5d-dtab", "/foo=>/bar"}, {"l5d-ctx-thing", "x"}, {"L5D-Custom", "y"}, {"l5d-sample", "1"},
			{"l5d-ctx-deadline", fmt.Sprintf("%d %d", now, soon)}, {"l5d-ctx-trace", traceHeader(0x11, 0x22, 0x33, 6, 0)}},
		backend: "a",
		sawL5d:  []string{"l5d-ctx-trace", "l5d-dst-client", "l5d-dst-service", "l5d-reqid"},
		saw:     map[string]string{"L5d-Dst-Service": "/svc/a", "L5d-Dst-Client": inet(r.a)},
		respL5d: []string{},
		resp:    map[string]string{"Via": "1.1 linkerd"},
		check: func(t *testing.T, res confResult) {
			tr := decodeTrace(t, res.seen.Header.Get("L5d-Ctx-Trace"))
			if tr.trace == 0x33 || tr.parent == 0x11 {
				t.Errorf("trace context %+v continues the caller's trace; clearContext must start a new one", tr)
			}
			checkReqID(t, res.seen, tr)
		},
	}, {
		name: "clearContext server: an l5d-dtab override is ignored, even a malformed one", port: r.clear, host: "a",
		hdr:     [][2]string{{"l5d-dtab", "/svc/a => /svc/b"}, {"l5d-ctx-dtab", "/svc/a =>"}},
		backend: "a",
	}, {
		// dtab.md §9.2: all l5d-ctx-dtab values, then all l5d-dtab values,
		// re-emitted as one l5d-ctx-dtab; an empty value is a valid dtab.
		name: "dtab headers combine in order and are re-emitted as one l5d-ctx-dtab", host: "a",
		hdr: [][2]string{{"l5d-dtab", "/a=>/b"}, {"l5d-ctx-dtab", "/c=>/d"}, {"l5d-dtab", ""},
			{"l5d-ctx-dtab", "/e=>/f;/g=>/h"}},
		backend: "a",
		saw:     map[string]string{"L5d-Ctx-Dtab": "/c=>/d;/e=>/f;/g=>/h;/a=>/b", "L5d-Dtab": ""},
		check: func(t *testing.T, res confResult) {
			if n := len(res.seen.Header["L5d-Ctx-Dtab"]); n != 1 {
				t.Errorf("backend saw %d l5d-ctx-dtab values; want 1", n)
			}
		},
	}, {
		name: "l5d-dtab entries win over l5d-ctx-dtab entries", host: "x",
		hdr:     [][2]string{{"l5d-dtab", "/svc/x => /svc/b"}, {"l5d-ctx-dtab", "/svc/x => /svc/a"}},
		backend: "b",
		saw:     map[string]string{"L5d-Ctx-Dtab": "/svc/x=>/svc/a;/svc/x=>/svc/b", "L5d-Dst-Service": "/svc/x", "L5d-Dst-Client": inet(r.b)},
	}, {
		name: "l5d-ctx-dtab alone routes (a dtab forwarded by an upstream linkerd)", host: "x",
		hdr:     [][2]string{{"l5d-ctx-dtab", "/svc/x=>/svc/b"}},
		backend: "b",
		saw:     map[string]string{"L5d-Ctx-Dtab": "/svc/x=>/svc/b"},
	}, {
		name: "the router's own dtab is not forwarded; an empty local dtab sends no l5d-ctx-dtab", host: "a",
		hdr:     [][2]string{{"l5d-dtab", ""}},
		backend: "a",
		saw:     map[string]string{"L5d-Ctx-Dtab": ""},
	}, {
		name: "dtab-local is neither read nor removed", host: "a",
		hdr:     [][2]string{{"Dtab-Local", "/svc/a => /svc/b"}},
		backend: "a",
		saw:     map[string]string{"Dtab-Local": "/svc/a => /svc/b"},
	}, {
		name: "Via: this hop is appended to the request's and the response's", host: "a",
		hdr:     [][2]string{{"Via", "1.1 edge"}, {"X-Reply-Via", "1.1 app"}},
		backend: "a",
		saw:     map[string]string{"Via": "1.1 edge, 1.1 linkerd"},
		resp:    map[string]string{"Via": "1.1 app, 1.1 linkerd"},
	}, {
		name: "Via: an HTTP/1.0 request gets 1.0 linkerd", proto: "HTTP/1.0", target: "/ten", host: "a",
		backend: "a",
		saw:     map[string]string{"Via": "1.0 linkerd"},
		check: func(t *testing.T, res confResult) {
			if res.seen.URI != "/ten" {
				t.Errorf("backend saw %q; want /ten", res.seen.URI)
			}
		},
	}, {
		// §1 step 1: the authority wins over the Host header.
		name:   "proxy-form request: authority becomes Host, target becomes path and query",
		target: "http://a/abs/path?q=1", host: "b",
		backend: "a",
		saw:     map[string]string{"L5d-Dst-Service": "/svc/a"},
		check: func(t *testing.T, res confResult) {
			if res.seen.Host != "a" || res.seen.URI != "/abs/path?q=1" {
				t.Errorf("backend saw Host %q target %q; want a and /abs/path?q=1", res.seen.Host, res.seen.URI)
			}
		},
	}, {
		name: "hop-by-hop request headers are removed, with those Connection names", host: "a",
		hdr: [][2]string{{"Connection", "X-Hop, Keep-Alive"}, {"X-Hop", "1"}, {"Keep-Alive", "300"},
			{"Proxy-Authorization", "Basic eDp5"}, {"Proxy-Connection", "keep-alive"}, {"TE", "gzip"}, {"Trailer", "X-T"},
			{"X-End-To-End", "kept"}},
		backend: "a",
		saw: map[string]string{"Connection": "", "X-Hop": "", "Keep-Alive": "", "Proxy-Authorization": "",
			"Proxy-Connection": "", "Te": "", "Trailer": "", "X-End-To-End": "kept"},
	}, {
		// Deviation on purpose (docs/compatibility.md): TE: trailers is
		// kept, as in Go's ReverseProxy, because gRPC needs it.
		name: "TE: trailers is kept", host: "a",
		hdr:     [][2]string{{"TE", "trailers"}},
		backend: "a",
		saw:     map[string]string{"Te": "trailers"},
	}, {
		name: "l5d-dst-residual carries what binding left over", host: "res",
		backend: "a",
		saw:     map[string]string{"L5d-Dst-Service": "/svc/res", "L5d-Dst-Client": inet(r.a), "L5d-Dst-Residual": "/x/y"},
	}, {
		// §2.3: the caller's span becomes the parent; trace id and flags
		// are kept; l5d-sample is consumed.
		name: "l5d-ctx-trace: a child span of the caller's; l5d-reqid is the trace id", host: "a",
		hdr:     [][2]string{{"l5d-ctx-trace", traceHeader(0x1111, 0x2222, 0x3333, 6, 0)}, {"l5d-sample", "0.5"}},
		backend: "a",
		saw:     map[string]string{"L5d-Sample": "", "L5d-Reqid": "0000000000003333"},
		check: func(t *testing.T, res confResult) {
			tr := decodeTrace(t, res.seen.Header.Get("L5d-Ctx-Trace"))
			if tr.size != 32 || tr.trace != 0x3333 || tr.parent != 0x1111 || tr.span == 0x1111 || tr.span == 0 {
				t.Errorf("outbound trace %+v; want a new span under span 0x1111 of trace 0x3333", tr)
			}
			if tr.flags&4 == 0 {
				t.Errorf("outbound trace flags %d; want the caller's sampled bit (4) kept", tr.flags)
			}
		},
	}, {
		name: "l5d-ctx-trace with a 128-bit trace id keeps the high half", host: "a",
		hdr:     [][2]string{{"l5d-ctx-trace", traceHeader(0x1111, 0x2222, 0x3333, 6, 0x4444)}},
		backend: "a",
		check: func(t *testing.T, res confResult) {
			tr := decodeTrace(t, res.seen.Header.Get("L5d-Ctx-Trace"))
			if tr.size != 40 || tr.hi != 0x4444 || tr.trace != 0x3333 || tr.parent != 0x1111 {
				t.Errorf("outbound trace %+v; want 40 bytes continuing trace 0x4444/0x3333 under span 0x1111", tr)
			}
		},
	}, {
		// §2.3: l5d-sample above 1 counts as 1, below 0 as 0.
		name: "l5d-sample above 1 samples a new trace", host: "a",
		hdr:     [][2]string{{"l5d-sample", "7"}},
		backend: "a",
		saw:     map[string]string{"L5d-Sample": ""},
		check: func(t *testing.T, res confResult) {
			if tr := decodeTrace(t, res.seen.Header.Get("L5d-Ctx-Trace")); tr.flags&6 != 6 {
				t.Errorf("outbound trace flags %d; want sampled (2|4)", tr.flags)
			}
		},
	}, {
		name: "l5d-sample below 0 does not sample a new trace", host: "a",
		hdr:     [][2]string{{"l5d-sample", "-3"}},
		backend: "a",
		saw:     map[string]string{"L5d-Sample": ""},
		check: func(t *testing.T, res confResult) {
			if tr := decodeTrace(t, res.seen.Header.Get("L5d-Ctx-Trace")); tr.flags&6 != 2 {
				t.Errorf("outbound trace flags %d; want a known decision not to sample (2)", tr.flags)
			}
		},
	}, {
		name: "an unparsable l5d-ctx-trace is ignored: a new trace, still routed", host: "a",
		hdr:     [][2]string{{"l5d-ctx-trace", "not-a-trace!"}},
		backend: "a",
		check: func(t *testing.T, res confResult) {
			tr := decodeTrace(t, res.seen.Header.Get("L5d-Ctx-Trace"))
			if tr.trace == 0 || tr.span == 0 {
				t.Errorf("outbound trace %+v; want a fresh trace", tr)
			}
			checkReqID(t, res.seen, tr)
		},
	}, {
		// §2.2: values combine as Finagle's Deadline.combined does (the
		// latest start, the earliest deadline) and are re-encoded once.
		name: "l5d-ctx-deadline: several combine into the strictest", host: "a",
		hdr: [][2]string{{"l5d-ctx-deadline", fmt.Sprintf("%d %d", now, later)},
			{"l5d-ctx-deadline", fmt.Sprintf("%d %d", now-int64(5*time.Second), soon)}},
		backend: "a",
		saw:     map[string]string{"L5d-Ctx-Deadline": fmt.Sprintf("%d %d", now, soon)},
		check: func(t *testing.T, res confResult) {
			if n := len(res.seen.Header["L5d-Ctx-Deadline"]); n != 1 {
				t.Errorf("backend saw %d l5d-ctx-deadline values; want 1", n)
			}
		},
	}, {
		name: "no deadline in, none out", host: "a",
		backend: "a",
		saw:     map[string]string{"L5d-Ctx-Deadline": ""},
	}, {
		name: "an application error is classified but is not a linkerd error", host: "a",
		hdr:     [][2]string{{"X-Reply-Status", "500"}},
		status:  500,
		backend: "a",
		resp:    map[string]string{"L5d-Success-Class": "0.0", "L5d-Err": "", "L5d-Backend": "a"},
	}, {
		name: "clearContext: an application error keeps its body, loses its l5d headers", port: r.clear, host: "a",
		hdr:     [][2]string{{"X-Reply-Status", "500"}},
		status:  500,
		backend: "a",
		respL5d: []string{},
	}, {
		name: "maxCallDepth: as many Via entries as allowed pass", port: r.depth, host: "a",
		hdr:     [][2]string{{"Via", "1.1 p, 1.1 q"}, {"Via", "1.1 r"}},
		backend: "a",
		saw:     map[string]string{"Via": "1.1 p, 1.1 q, 1.1 r, 1.1 linkerd"},
	}}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, proto, target := c.port, c.proto, c.target
			if port == 0 {
				port = r.plain
			}
			if proto == "" {
				proto = "HTTP/1.1"
			}
			if target == "" {
				target = "/"
			}
			want := c.status
			if want == 0 {
				want = 200
			}
			res := confRaw(t, port, confRequest(proto, target, c.host, c.hdr))
			if res.status != want {
				t.Fatalf("status %d; want %d (l5d-err %q, body %q)", res.status, want, unescape(res.header.Get("L5d-Err")), res.body)
			}
			got := ""
			if res.seen != nil {
				got = res.seen.Backend
			}
			if got != c.backend {
				t.Fatalf("answered by backend %q; want %q (body %q)", got, c.backend, res.body)
			}
			if c.sawL5d != nil {
				if names := l5dNames(res.seen.Header); !slices.Equal(names, c.sawL5d) {
					t.Errorf("backend saw l5d headers %v; want exactly %v", names, c.sawL5d)
				}
			}
			for k, v := range c.saw {
				if vs, ok := res.seen.Header[http.CanonicalHeaderKey(k)]; v == "" && ok {
					t.Errorf("backend saw %s: %q; want it absent", k, vs)
				} else if v != "" && strings.Join(vs, ", ") != v {
					t.Errorf("backend saw %s: %q; want %q", k, vs, v)
				}
			}
			if c.respL5d != nil {
				if names := l5dNames(res.header); len(names) != len(c.respL5d) || !slices.Equal(names, c.respL5d) {
					t.Errorf("response carries l5d headers %v; want exactly %v", names, c.respL5d)
				}
			}
			for k, v := range c.resp {
				if vs, ok := res.header[http.CanonicalHeaderKey(k)]; v == "" && ok {
					t.Errorf("response %s: %q; want it absent", k, vs)
				} else if v != "" && strings.Join(vs, ", ") != v {
					t.Errorf("response %s: %q; want %q", k, vs, v)
				}
			}
			if c.check != nil {
				c.check(t, res)
			}
		})
	}
}

// TestErrorResponsesConformance: the responses linkerd writes itself
// (headers-admin.md §4): status, l5d-err (form-encoded, truncated to
// maxHeadersKB), l5d-retryable, text/plain body carrying the full
// message; and what clearContext leaves of them (§3).
func TestErrorResponsesConformance(t *testing.T) {
	t.Parallel()
	r := startConfHeaderRouter(t)
	// A long override dtab makes the "Unable to route" message longer
	// than the tight router's maxHeadersKB (1 KiB).
	var long []string
	for i := range 40 {
		long = append(long, fmt.Sprintf("/svc/zz%02d => /svc/neg", i))
	}
	type tc struct {
		name   string
		port   int
		proto  string
		host   string
		hdr    [][2]string
		status int
		// exact is the whole message when known; has are parts of it.
		exact     string
		prefix    string
		has       []string
		retryable bool
		// cleared: a clearContext server, so no l5d-* and no body.
		cleared bool
		check   func(t *testing.T, res confResult, msg string)
	}
	cases := []tc{{
		name: "no Host header: 400 Unknown destination", proto: "HTTP/1.0", status: 400,
		prefix: `Unknown destination: Request("GET /", from 127.0.0.1:`, has: []string{") / Host header is absent"},
	}, {
		name: "clearContext: identification errors lose l5d-err and body", port: r.clear, proto: "HTTP/1.0", status: 400, cleared: true,
	}, {
		name: "malformed l5d-dtab: 400 with the parser's message", host: "a", hdr: [][2]string{{"l5d-dtab", "/svc/a =>"}}, status: 400,
		has: []string{"l5d-dtab", `"/svc/a =>"`, "expected"},
	}, {
		name: "malformed l5d-ctx-dtab: 400", host: "a", hdr: [][2]string{{"l5d-ctx-dtab", "svc=>/b"}}, status: 400,
		has: []string{"l5d-ctx-dtab", `"svc=>/b"`, "expected"},
	}, {
		name: "Via deeper than maxCallDepth: 400", port: r.depth, host: "a",
		hdr: [][2]string{{"Via", "1.1 p, 1.1 q, 1.1 r, 1.1 s"}}, status: 400,
		exact: "Maximum number of calls (3) has been exceeded. Please check for proxy loops.",
	}, {
		name: "negative name: 502 Unable to route request with the dtabs", host: "neg",
		hdr: [][2]string{{"l5d-dtab", "/svc/other => /svc/neg"}}, status: 502,
		prefix: "Unable to route request!",
		has: []string{"\nservice name: /svc/neg\n", "\ndtab:\n", "\nbase dtab:\n", "\noverride dtab:\n  /svc/other => /svc/neg\n",
			"\n  /svc/neg => ~\n", fmt.Sprintf("\n  /svc/a => /$/inet/127.0.0.1/%d\n", r.a)},
		check: func(t *testing.T, _ confResult, msg string) {
			// The sections come in this order: full, base, override.
			i, j, k := strings.Index(msg, "\ndtab:\n"), strings.Index(msg, "\nbase dtab:\n"), strings.Index(msg, "\noverride dtab:\n")
			if !(i < j && j < k) {
				t.Errorf("dtab sections out of order (dtab %d, base %d, override %d)", i, j, k)
			}
		},
	}, {
		name: "unknown name (no dtab rule): 502", host: "nowhere", status: 502,
		prefix: "Unable to route request!", has: []string{"service name: /svc/nowhere"},
	}, {
		name: "endpoint refuses connections: 502, retryable", host: "dead", status: 502, retryable: true,
		has: []string{fmt.Sprintf("127.0.0.1:%d", r.dead)},
	}, {
		name: "clearContext: routing errors lose l5d-err and body", port: r.clear, host: "neg", status: 502, cleared: true,
	}, {
		name: "totalTimeoutMs exceeded: 503", port: r.tight, host: "a", hdr: [][2]string{{"X-Reply-Sleep", "3s"}}, status: 503,
	}, {
		name: "requestAttemptTimeoutMs exceeded: 503", port: r.attempt, host: "a", hdr: [][2]string{{"X-Reply-Sleep", "3s"}}, status: 503,
	}, {
		name: "l5d-err is cut at maxHeadersKB; the body keeps the whole message", port: r.tight, host: "zz00",
		hdr: [][2]string{{"l5d-dtab", strings.Join(long, ";")}}, status: 502,
		prefix: "Unable to route request!",
		check: func(t *testing.T, res confResult, msg string) {
			raw := res.header.Get("L5d-Err")
			if len(raw) > 1024 {
				t.Errorf("l5d-err is %d bytes; want at most maxHeadersKB (1024)", len(raw))
			}
			if full := url.QueryEscape(res.body); len(full) <= 1024 || !strings.HasPrefix(full, raw) {
				t.Errorf("l5d-err (%d bytes) is not a prefix of the %d-byte encoded body", len(raw), len(full))
			}
			if !strings.Contains(res.body, "/svc/zz39 => /svc/neg") {
				t.Errorf("body lost the end of the message: %q", res.body)
			}
		},
	}, {
		name: "the body is cut at maxErrResponseKB", port: r.errcap, host: "zz00",
		hdr: [][2]string{{"l5d-dtab", strings.Join(long, ";")}}, status: 502,
		prefix: "Unable to route request!",
		check: func(t *testing.T, res confResult, msg string) {
			if len(msg) != 1024 {
				t.Errorf("body is %d bytes; want maxErrResponseKB (1024)", len(msg))
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, proto := c.port, c.proto
			if port == 0 {
				port = r.plain
			}
			if proto == "" {
				proto = "HTTP/1.1"
			}
			res := confRaw(t, port, confRequest(proto, "/", c.host, c.hdr))
			if res.status != c.status {
				t.Fatalf("status %d; want %d (l5d-err %q, body %q)", res.status, c.status, unescape(res.header.Get("L5d-Err")), res.body)
			}
			if c.cleared {
				if names := l5dNames(res.header); len(names) != 0 || res.body != "" {
					t.Errorf("l5d headers %v, body %q; want none and an empty body", names, res.body)
				}
				return
			}
			raw := res.header.Get("L5d-Err")
			if raw == "" {
				t.Fatalf("no l5d-err on a linkerd error (body %q)", res.body)
			}
			if strings.ContainsAny(raw, " \n") {
				t.Errorf("l5d-err %q is not form-encoded", raw)
			}
			msg, err := url.QueryUnescape(raw)
			if err != nil {
				t.Errorf("l5d-err %q: %v", raw, err)
			}
			if c.check == nil && msg != res.body {
				t.Errorf("l5d-err says %q but the body is %q; want the same message", msg, res.body)
			}
			if ct := res.header.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("Content-Type %q; want text/plain", ct)
			}
			if c.exact != "" && res.body != c.exact {
				t.Errorf("message %q; want %q", res.body, c.exact)
			}
			if !strings.HasPrefix(res.body, c.prefix) {
				t.Errorf("message %q; want it to start with %q", res.body, c.prefix)
			}
			for _, h := range c.has {
				if !strings.Contains(res.body, h) {
					t.Errorf("message %q; want it to contain %q", res.body, h)
				}
			}
			if got := res.header.Get("L5d-Retryable") == "true"; got != c.retryable {
				t.Errorf("l5d-retryable %q; want true: %v", res.header.Get("L5d-Retryable"), c.retryable)
			}
			if c.check != nil {
				c.check(t, res, res.body)
			}
		})
	}
}

// TestRetryableHeaderConformance (headers-admin.md §2.5): a failure the
// classifier calls non-retryable is retried when the response says
// l5d-retryable: true (what a downstream linkerd sends for a request it
// never delivered), unless the request body is chunked.
func TestRetryableHeaderConformance(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := map[string]int{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("X-Id")
		mu.Lock()
		calls[id]++
		n := calls[id]
		mu.Unlock()
		if n == 1 {
			w.Header().Set("L5d-Retryable", "true")
			http.Error(w, "not delivered", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	be := ln.Addr().(*net.TCPAddr).Port
	admin, port := linnettest.FreePort(t), linnettest.FreePort(t)
	linnettest.StartRouter(t, fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: http
  dtab: /svc/be => /$/inet/127.0.0.1/%d;
  servers: [{ip: 127.0.0.1, port: %d}]
`, admin, be, port), admin)
	for _, c := range []struct {
		name, request string
		status        int
		calls         int
	}{{
		name:    "POST with a length: retried",
		request: "POST / HTTP/1.1\r\nHost: be\r\nX-Id: fixed\r\nContent-Length: 2\r\n\r\nhi",
		status:  200, calls: 2,
	}, {
		name:    "POST with a chunked body: never retried",
		request: "POST / HTTP/1.1\r\nHost: be\r\nX-Id: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
		status:  503, calls: 1,
	}} {
		res := confRaw(t, port, c.request)
		mu.Lock()
		n := calls[strings.Fields(c.request[strings.Index(c.request, "X-Id: ")+6:])[0]]
		mu.Unlock()
		if res.status != c.status || n != c.calls {
			t.Errorf("%s: status %d after %d calls; want %d after %d", c.name, res.status, n, c.status, c.calls)
		}
	}
}

// TestH2HeadersConformance: an h2 router applies the same header rules
// (headers-admin.md: "Protocol h2 uses the same header names"): the
// downstream view, clearContext, and linkerd errors with l5d-err.
func TestH2HeadersConformance(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("L5d-Backend", "h2")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(confSeen{Backend: "h2", Host: r.Host, URI: r.RequestURI, Proto: r.Proto, Header: r.Header})
	})
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: echo, Protocols: protos}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	be := ln.Addr().(*net.TCPAddr).Port
	admin, plain, clear := linnettest.FreePort(t), linnettest.FreePort(t), linnettest.FreePort(t)
	linnettest.StartRouter(t, fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
routers:
- protocol: h2
  experimental: true
  dtab: |
    /svc/a => /$/inet/127.0.0.1/%d;
    /svc/neg => ~;
  identifier: {kind: io.l5d.header.token, header: ":authority"}
  servers:
  - {ip: 127.0.0.1, port: %d}
  - {ip: 127.0.0.1, port: %d, clearContext: true}
`, admin, be, plain, clear), admin)

	// HTTP/2 with prior knowledge (h2c), as gRPC clients speak it.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: protos}}
	do := func(t *testing.T, port int, host string, hdr [][2]string) confResult {
		t.Helper()
		req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/p?q=1", port), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for _, kv := range hdr {
			req.Header.Add(kv[0], kv[1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		res := confResult{status: resp.StatusCode, header: resp.Header, body: string(b)}
		var s confSeen
		if json.Unmarshal(b, &s) == nil && s.Backend != "" {
			res.seen = &s
		}
		return res
	}
	ctx := [][2]string{{"l5d-dtab", "/foo=>/bar"}, {"l5d-ctx-thing", "x"}}

	t.Run("downstream view", func(t *testing.T) {
		res := do(t, plain, "a", ctx)
		if res.status != 200 || res.seen == nil {
			t.Fatalf("status %d body %q; want 200 from the backend", res.status, res.body)
		}
		want := []string{"l5d-ctx-dtab", "l5d-ctx-thing", "l5d-ctx-trace", "l5d-dst-client", "l5d-dst-service", "l5d-reqid"}
		if got := l5dNames(res.seen.Header); !slices.Equal(got, want) {
			t.Errorf("backend saw l5d headers %v; want exactly %v", got, want)
		}
		if g := res.seen.Header.Get("L5d-Ctx-Dtab"); g != "/foo=>/bar" {
			t.Errorf("l5d-ctx-dtab %q; want /foo=>/bar", g)
		}
		if g := res.seen.Header.Get("L5d-Dst-Service"); g != "/svc/a" {
			t.Errorf("l5d-dst-service %q; want /svc/a", g)
		}
		if res.header.Get("L5d-Success-Class") != "1.0" || res.header.Get("L5d-Backend") != "h2" {
			t.Errorf("response headers %v; want l5d-success-class 1.0 and the backend's l5d-backend", res.header)
		}
	})
	t.Run("clearContext view", func(t *testing.T) {
		res := do(t, clear, "a", append(ctx, [2]string{"l5d-dtab", "/svc/a => /svc/neg"}))
		if res.status != 200 || res.seen == nil {
			t.Fatalf("status %d body %q; want 200 from the backend (the override ignored)", res.status, res.body)
		}
		want := []string{"l5d-ctx-trace", "l5d-dst-client", "l5d-dst-service", "l5d-reqid"}
		if got := l5dNames(res.seen.Header); !slices.Equal(got, want) {
			t.Errorf("backend saw l5d headers %v; want exactly %v", got, want)
		}
		if got := l5dNames(res.header); len(got) != 0 {
			t.Errorf("response carries %v; want no l5d headers", got)
		}
	})
	for _, c := range []struct {
		name   string
		port   int
		host   string
		hdr    [][2]string
		status int
		prefix string
	}{
		{"malformed l5d-dtab", plain, "a", [][2]string{{"l5d-dtab", "/a=>"}}, 400, "Invalid l5d-dtab header"},
		{"negative name", plain, "neg", nil, 502, "Unable to route request!\n"},
		{"clearContext error", clear, "neg", nil, 502, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := do(t, c.port, c.host, c.hdr)
			if res.status != c.status {
				t.Fatalf("status %d; want %d (body %q)", res.status, c.status, res.body)
			}
			if c.prefix == "" {
				if got := l5dNames(res.header); len(got) != 0 || res.body != "" {
					t.Errorf("l5d headers %v body %q; want none and an empty body", got, res.body)
				}
				return
			}
			msg, _ := url.QueryUnescape(res.header.Get("L5d-Err"))
			if !strings.HasPrefix(res.body, c.prefix) || msg != res.body || res.header.Get("Content-Type") != "text/plain" {
				t.Errorf("l5d-err %q, Content-Type %q, body %q; want the message (starting %q) in both, text/plain",
					msg, res.header.Get("Content-Type"), res.body, c.prefix)
			}
		})
	}
}
