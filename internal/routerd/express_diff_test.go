package routerd

// A differential test of the HTTP/1.1 router's express lane: two routers
// started from the same configuration text, one with the lane and one
// without, receive the same corpus of raw requests on the same kind of
// keep-alive connections; everything the client, the endpoint and an
// operator (metrics.json) can see must be the same, but for values that
// are random by design (trace and request ids) or depend on timing.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// expectExpressUse turns on the assertion that the lane router's plain
// server counted express requests, proving the lane ran (the full router
// must count none either way). Turn it off only to run the comparison
// on a tree without the lane.
const expectExpressUse = true

// laneOff returns the options of the router whose express lane is off.
func laneOff(text string) Options {
	return Options{Text: []byte(text), DisableExpressLane: true}
}

// diffEcho is what the backend received, as it tells the client in the
// response body and as the test records it.
type diffEcho struct {
	Method string              `json:"method"`
	URI    string              `json:"uri"`
	Proto  string              `json:"proto"`
	Host   string              `json:"host"`
	Header map[string][]string `json:"header"` // lower-cased names
	Body   string              `json:"body"`
}

// diffBackend answers every request with the JSON of what it received and
// remembers it by the request's x-diff-id.
type diffBackend struct {
	mu   sync.Mutex
	seen map[string][]diffEcho
}

func (b *diffBackend) take(id string) []diffEcho {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.seen[id]
	delete(b.seen, id)
	return e
}

func (b *diffBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e := diffEcho{Method: r.Method, URI: r.RequestURI, Proto: r.Proto, Host: r.Host, Header: map[string][]string{}, Body: string(body)}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		e.Header[lk] = append(e.Header[lk], vs...)
	}
	b.mu.Lock()
	id := r.Header.Get("X-Diff-Id")
	attempt := len(b.seen[id])
	b.seen[id] = append(b.seen[id], e)
	b.mu.Unlock()
	js, _ := json.Marshal(e)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/e500":
		w.WriteHeader(500)
		w.Write(js)
	case "/e503":
		w.WriteHeader(503)
		w.Write(js)
	case "/flaky": // fails the first attempt only
		if attempt == 0 {
			w.WriteHeader(503)
		}
		w.Write(js)
	case "/hop":
		h.Set("Connection", "foo")
		h.Set("Foo", "bar")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", `Basic realm="x"`)
		h.Set("L5d-Ctx-Thing", "from-endpoint")
		h.Set("L5d-Success-Class", "0.5")
		h["x-odd-CASE"] = []string{"v1", "v2"}
		w.Write(js)
	case "/chunked":
		f := w.(http.Flusher)
		for len(js) > 0 {
			n := min(len(js), 40)
			w.Write(js[:n])
			f.Flush()
			js = js[n:]
		}
	case "/empty204":
		h.Del("Content-Type")
		w.WriteHeader(204)
	case "/nm304":
		h.Del("Content-Type")
		h.Set("ETag", `"v1"`)
		w.WriteHeader(304)
	case "/close":
		h.Set("Connection", "close")
		w.Write(js)
	case "/big": // larger than any buffer on the way
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.Itoa(len(diffBig)))
		w.Write(diffBig)
	case "/bigchunked":
		h.Set("Content-Type", "application/octet-stream")
		f := w.(http.Flusher)
		for b := diffBig; len(b) > 0; b = b[min(len(b), 20000):] {
			w.Write(b[:min(len(b), 20000)])
			f.Flush()
		}
	default:
		w.Write(js)
	}
}

// diffHosts are the services the corpus is sent to, and the backend
// behaviours (paths) for each: web is plain, retry's responses are
// classified by io.l5d.http.retryableRead5XX, so that its failed reads
// are retried (its /e503 until the retry budget is spent: last).
// diffBig is the body of /big and /bigchunked.
var diffBig = bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz\n"), 2800) // ~100 KiB

var diffHosts = []struct {
	host  string
	paths []string
}{
	{"web", []string{"/plain", "/e500", "/e503", "/hop", "/chunked", "/empty204", "/nm304", "/close", "/big", "/bigchunked"}},
	{"retry", []string{"/flaky", "/plain", "/e503"}},
	{"down", []string{"/plain"}}, // routed to a closed port
}

// onHost rewrites a corpus request written for host web to host.
func onHost(raw, host string) string {
	raw = strings.Replace(raw, ": web\r\n", ": "+host+"\r\n", 1)
	return strings.Replace(raw, " http://web/", " http://"+host+"/", 1)
}

// diffCase is one request of the corpus: its method (to read the
// response) and its raw bytes given the request target and id.
type diffCase struct {
	name   string
	method string
	trace  bool // carries an l5d-ctx-trace from a previous hop
	raw    func(target, id string) string
}

// diffManyFields is a head of 80 distinct fields.
var diffManyFields = func() string {
	var b strings.Builder
	for i := range 80 {
		fmt.Fprintf(&b, "X-Field-%02d: value %d\r\n", i, i)
	}
	return b.String()
}()

func diffCorpus(trace string) []diffCase {
	get := func(name, extra string) diffCase {
		return diffCase{name: name, method: "GET", raw: func(t, id string) string {
			return "GET " + t + " HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\n" + extra + "\r\n"
		}}
	}
	cs := []diffCase{
		get("get-minimal", ""),
		get("get-user-agent", "User-Agent: diff-test/1.0\r\nAccept: */*\r\n"),
		{name: "get-lower-case", method: "GET", raw: func(t, id string) string {
			return "GET " + t + " HTTP/1.1\r\nhost: web\r\nx-diff-id: " + id + "\r\nuser-agent: lc\r\naccept-encoding: gzip\r\n\r\n"
		}},
		{name: "get-odd-case", method: "GET", raw: func(t, id string) string {
			return "GET " + t + " HTTP/1.1\r\nhOsT: web\r\nx-DIFF-id: " + id + "\r\nX-cUsToM-fIeLd: a b\r\n\r\n"
		}},
		get("get-duplicates", "X-Dup: 1\r\nX-Dup: 2\r\nx-dup: 3\r\nAccept: text/plain\r\nAccept: application/json\r\n"),
		get("get-keep-alive", "Connection: keep-alive\r\n"),
		get("get-ctx-thing", "l5d-ctx-thing: hello\r\n"),
		get("get-l5d-dtab", "l5d-dtab: /foo=>/bar\r\n"),
		get("get-via", "Via: 1.1 upstream\r\n"),
		get("get-expect", "Expect: 100-continue\r\n"),
		get("get-te", "TE: trailers\r\n"),
		get("get-connection-token", "Connection: x-hop\r\nX-Hop: 1\r\n"),
		get("get-reqid-inbound", "l5d-reqid: 0123456789abcdef\r\nl5d-sample: 1\r\n"),
		get("get-bad-dtab", "l5d-dtab: this is not a dtab\r\n"),
		get("get-big-field", "Cookie: "+strings.Repeat("k=v; ", 1400)+"end\r\n"),
		get("get-many-fields", diffManyFields),
		get("get-padded-values", "X-Pad:    padded value   \r\nX-Empty:\r\nX-Tab:\tt\t\r\n"),
		get("get-connection-close", "Connection: close\r\n"),
		{name: "get-odd-uri", method: "GET", raw: func(t, id string) string {
			return "GET " + t + "/a%2Fb;p=1/./c?q=%zz&&r=%E2%9C%93&=# HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\n\r\n"
		}},
		{name: "get-host-upper-case", method: "GET", raw: func(t, id string) string {
			return "GET " + t + " HTTP/1.1\r\nHost: WEB\r\nX-Diff-Id: " + id + "\r\n\r\n"
		}},
		{name: "get-with-body", method: "GET", raw: func(t, id string) string {
			return "GET " + t + " HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\nContent-Length: 4\r\n\r\nbody"
		}},
		{name: "get-chunked-empty", method: "GET", raw: func(t, id string) string {
			return "GET " + t + " HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		}},
		{name: "get-host-port", method: "GET", raw: func(t, id string) string {
			return "GET " + t + " HTTP/1.1\r\nHost: web:8080\r\nX-Diff-Id: " + id + "\r\n\r\n"
		}},
		{name: "get-no-host", method: "GET", raw: func(t, id string) string {
			return "GET " + t + " HTTP/1.1\r\nX-Diff-Id: " + id + "\r\n\r\n"
		}},
		{name: "get-query", method: "GET", raw: func(t, id string) string {
			return "GET " + t + "?a=1&b=two%20words&a=3 HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\n\r\n"
		}},
		{name: "head", method: "HEAD", raw: func(t, id string) string {
			return "HEAD " + t + " HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\n\r\n"
		}},
		{name: "post-body", method: "POST", raw: func(t, id string) string {
			return "POST " + t + " HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world"
		}},
		{name: "post-chunked", method: "POST", raw: func(t, id string) string {
			return "POST " + t + " HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
		}},
		{name: "post-expect", method: "POST", raw: func(t, id string) string {
			return "POST " + t + " HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"
		}},
		{name: "absolute-form", method: "GET", raw: func(t, id string) string {
			return "GET http://web" + t + " HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\n\r\n"
		}},
		{name: "http10-keep-alive", method: "GET", raw: func(t, id string) string {
			return "GET " + t + " HTTP/1.0\r\nHost: web\r\nX-Diff-Id: " + id + "\r\nConnection: keep-alive\r\n\r\n"
		}},
		{name: "http10", method: "GET", raw: func(t, id string) string {
			return "GET " + t + " HTTP/1.0\r\nHost: web\r\nX-Diff-Id: " + id + "\r\n\r\n"
		}},
	}
	if trace != "" {
		c := get("get-ctx-trace", "l5d-ctx-trace: "+trace+"\r\n")
		c.trace = true
		cs = append(cs, c)
		c = get("get-ctx-trace-and-thing", "User-Agent: x\r\nl5d-ctx-trace: "+trace+"\r\nl5d-ctx-thing: t\r\n")
		c.trace = true
		cs = append(cs, c)
	}
	return cs
}

// diffResult is everything observable about one request.
type diffResult struct {
	Err      string              // the client failed to write or read
	Interim  []string            // 1xx responses before the final one
	Status   string              // "HTTP/1.1 200 OK"
	Header   map[string][]string // lower-cased names; Date values blanked
	TE       []string            // response Transfer-Encoding
	Length   int64               // response Content-Length as read (-1: none)
	Body     []byte
	Echo     *diffEcho // the body decoded, when it is an echo
	Closed   bool      // the router closed the connection after the response
	Received []diffEcho
}

// diffConn is a client keep-alive connection to one router server,
// reopened after the router closes it.
type diffConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

func (d *diffConn) close() {
	if d.c != nil {
		d.c.Close()
		d.c = nil
	}
}

// do sends one request and reads its response.
func (d *diffConn) do(method, raw string) diffResult {
	if err := d.send(raw); err != nil {
		d.close()
		return diffResult{Err: err.Error()}
	}
	return d.read(method)
}

// send writes raw, dialling first if the connection is closed.
func (d *diffConn) send(raw string) error {
	if d.c == nil {
		c, err := net.Dial("tcp", d.addr)
		if err != nil {
			return err
		}
		d.c, d.br = c, bufio.NewReader(c)
	}
	d.c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(d.c, raw)
	return err
}

// pipeline writes the requests raws (of the cases cs) at once, then
// reads their responses in order.
func (d *diffConn) pipeline(cs []diffCase, raws []string) []diffResult {
	out := make([]diffResult, len(cs))
	if err := d.send(strings.Join(raws, "")); err != nil {
		d.close()
		for i := range out {
			out[i].Err = err.Error()
		}
		return out
	}
	for i, c := range cs {
		out[i] = d.read(c.method)
	}
	return out
}

// read reads the response to a request with the given method.
func (d *diffConn) read(method string) (res diffResult) {
	fail := func(err error) diffResult {
		d.close()
		res.Err = err.Error()
		return res
	}
	if d.c == nil {
		res.Err = "connection closed before the response"
		return res
	}
	var resp *http.Response
	for {
		var err error
		resp, err = http.ReadResponse(d.br, &http.Request{Method: method})
		if err != nil {
			return fail(err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == 101 {
			break
		}
		res.Interim = append(res.Interim, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fail(err)
	}
	res.Status = resp.Proto + " " + resp.Status
	res.Header = map[string][]string{}
	for k, vs := range resp.Header {
		if strings.EqualFold(k, "Date") {
			vs = []string{"<date>"}
		}
		res.Header[strings.ToLower(k)] = vs
	}
	res.TE, res.Length, res.Body = resp.TransferEncoding, resp.ContentLength, body
	var e diffEcho
	if json.Unmarshal(body, &e) == nil && e.Method != "" {
		res.Echo = &e
	}
	if resp.Close {
		// The router announced the close: it must follow.
		if n, err := d.br.Read(make([]byte, 1)); n > 0 || err != io.EOF {
			res.Err = fmt.Sprintf("response said close, then read %d bytes, %v", n, err)
		}
		res.Closed = true
		d.close()
	}
	return res
}

var reqIDFormat = regexp.MustCompile(`^[0-9a-f]{16}$`)

// normEcho replaces the random l5d-reqid and l5d-ctx-trace values of e by
// what must be equal across routers: their format, and, when the request
// carried a trace context the router kept (keep), the trace id, parent
// span and flags (the span id is new on each hop), plus the request id
// (the trace id in hex). It returns format violations.
func normEcho(e diffEcho, keep bool) (diffEcho, []string) {
	var bad []string
	h := maps.Clone(e.Header)
	if vs, ok := h["l5d-reqid"]; ok {
		out := make([]string, len(vs))
		for i, v := range vs {
			if !reqIDFormat.MatchString(v) {
				bad = append(bad, fmt.Sprintf("l5d-reqid %q is not 16 lower-case hex digits", v))
			}
			out[i] = "<reqid>"
			if keep {
				out[i] = v
			}
		}
		h["l5d-reqid"] = out
	}
	if vs, ok := h["l5d-ctx-trace"]; ok {
		out := make([]string, len(vs))
		for i, v := range vs {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil || (len(b) != 32 && len(b) != 40) {
				bad = append(bad, fmt.Sprintf("l5d-ctx-trace %q is not base64 of 32 or 40 bytes (%d, %v)", v, len(b), err))
				out[i] = v
				continue
			}
			out[i] = fmt.Sprintf("<ctx-trace %d bytes>", len(b))
			if keep {
				out[i] = fmt.Sprintf("<ctx-trace %d bytes trace=%s parent=%x flags=%x>", len(b), ctxTraceID(b), b[8:16], b[24:32])
			}
		}
		h["l5d-ctx-trace"] = out
	}
	e.Header = h
	return e, bad
}

// ctxTraceID is the trace id of a decoded l5d-ctx-trace, in hex: bytes
// 16–24, preceded by the high half (bytes 32–40) of a 128-bit id.
func ctxTraceID(b []byte) string {
	if len(b) == 40 {
		return hex.EncodeToString(b[32:40]) + hex.EncodeToString(b[16:24])
	}
	return hex.EncodeToString(b[16:24])
}

// diffJSON compares two values as JSON, descending into objects, and
// describes each difference by its path.
func diffJSON(what string, a, b any) []string {
	ja, jb := jsonText(a), jsonText(b)
	if ja == jb {
		return nil
	}
	var ma, mb map[string]any
	if json.Unmarshal([]byte(ja), &ma) != nil || json.Unmarshal([]byte(jb), &mb) != nil || ma == nil || mb == nil {
		return []string{fmt.Sprintf("%s:\n    A: %s\n    B: %s", what, ja, jb)}
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(merged(ma, mb))) {
		va, oka := ma[k]
		vb, okb := mb[k]
		switch {
		case oka && okb:
			out = append(out, diffJSON(what+"."+k, va, vb)...)
		case oka:
			out = append(out, fmt.Sprintf("%s.%s:\n    A: %s\n    B: <absent>", what, k, jsonText(va)))
		default:
			out = append(out, fmt.Sprintf("%s.%s:\n    A: <absent>\n    B: %s", what, k, jsonText(vb)))
		}
	}
	return out
}

// jsonText is v as compact JSON, without HTML escaping.
func jsonText(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func merged(a, b map[string]any) map[string]any {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

// compareResults returns the differences between the two routers' results
// for one request, and format violations found on either side.
func compareResults(a, b diffResult, keep bool) []string {
	var out []string
	norm := func(r diffResult, side string) diffResult {
		if r.Echo != nil {
			e, bad := normEcho(*r.Echo, keep)
			r.Echo = &e
			for _, s := range bad {
				out = append(out, side+" response body: "+s)
			}
			r.Body = nil // compared decoded
		}
		rec := make([]diffEcho, len(r.Received))
		for i, e := range r.Received {
			var bad []string
			rec[i], bad = normEcho(e, keep)
			for _, s := range bad {
				out = append(out, side+" backend received: "+s)
			}
		}
		r.Received = rec
		return r
	}
	a, b = norm(a, "A"), norm(b, "B")
	if len(a.Received) != len(b.Received) {
		out = append(out, fmt.Sprintf("backend received %d request(s) from A, %d from B", len(a.Received), len(b.Received)))
	} else {
		for i := range a.Received {
			out = append(out, diffJSON(fmt.Sprintf("backend received[%d]", i), a.Received[i], b.Received[i])...)
		}
	}
	a.Received, b.Received = nil, nil
	out = append(out, diffJSON("client received", a, b)...)
	return out
}

// fetchMetrics returns /admin/metrics.json's keys under rt/, with each
// server's port replaced by its index (the ports differ between routers).
func fetchMetrics(t *testing.T, p *Process) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.AdminAddr() + "/admin/metrics.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatalf("metrics.json: %v", err)
	}
	return rtMetrics(p, all)
}

// counterMetrics returns the counters and gauges that fetchMetrics would,
// read from the registry directly: cheap enough to compare after every
// request.
func counterMetrics(p *Process) map[string]float64 {
	all := map[string]float64{}
	p.Registry().Each(func(m telemetry.Metric) {
		switch m.Kind {
		case telemetry.KindCounter:
			all[m.Name] = float64(m.Counter.Value())
		case telemetry.KindGauge:
			all[m.Name] = m.Gauge()
		}
	})
	return rtMetrics(p, all)
}

// rtMetrics keeps the keys under rt/ and replaces each server's port by
// its index.
func rtMetrics(p *Process, all map[string]float64) map[string]float64 {
	var repl []string
	for i, a := range p.ServerAddrs() {
		host, port, _ := net.SplitHostPort(a)
		repl = append(repl, "/server/"+host+"/"+port+"/", "/server/"+host+"/S"+strconv.Itoa(i)+"/")
	}
	r := strings.NewReplacer(repl...)
	out := map[string]float64{}
	for k, v := range all {
		if strings.HasPrefix(k, "rt/") {
			out[r.Replace(k)] = v
		}
	}
	return out
}

// settledMetrics compares the two routers' counters and gauges (not the
// histograms, which show only counts between rolls), but those in
// known, polling for up to wait while they differ: a router updates them
// as it finishes a response, which its client may see first. It returns
// the differences and adds their names to known.
func settledMetrics(pa, pb *Process, wait time.Duration, known map[string]bool) []string {
	for deadline := time.Now().Add(wait); ; {
		ma, mb := counterMetrics(pa), counterMetrics(pb)
		for k := range known {
			delete(ma, k)
			delete(mb, k)
		}
		d := compareMetrics(ma, mb)
		if len(d) == 0 || time.Now().After(deadline) {
			for _, s := range d {
				known[strings.TrimSuffix(strings.Fields(s)[1], ":")] = true
			}
			return d
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// statField splits a histogram key X.<field> into X and field.
var statField = regexp.MustCompile(`^(.*)\.(count|max|min|p50|p90|p95|p99|p9990|p9999|sum|avg)$`)

// compareMetrics describes the differences between two routers' rt/
// metrics, with these exceptions:
//   - express: counted only by the lane (checked separately);
//   - latency and time/* histograms: only their count is compared (their
//     values are durations);
//   - client (endpoint-side) connections, connects and closes: how many
//     pooled connections the router opened depends on whether the previous
//     response's connection was back in the pool when the next request
//     came, a race of the router with itself.
func compareMetrics(a, b map[string]float64) []string {
	skip := func(k string) bool {
		if strings.HasSuffix(k, "/express") {
			return true
		}
		if strings.Contains(k, "/client/") && (strings.HasSuffix(k, "/connections") || strings.HasSuffix(k, "/connects") || strings.HasSuffix(k, "/closes")) {
			return true
		}
		return false
	}
	timing := func(k string) bool {
		if strings.IndexByte(k, '.') < 0 {
			return false // not a histogram field: the common case, kept cheap
		}
		m := statField.FindStringSubmatch(k)
		if m == nil || m[2] == "count" {
			return false
		}
		return strings.HasSuffix(m[1], "/request_latency_ms") || strings.Contains(m[1], "/time/")
	}
	var out []string
	report := func(k string) {
		va, oka := a[k]
		vb, okb := b[k]
		if (oka == okb && va == vb) || skip(k) || timing(k) {
			return
		}
		sa, sb := strconv.FormatFloat(va, 'g', -1, 64), strconv.FormatFloat(vb, 'g', -1, 64)
		if !oka {
			sa = "<absent>"
		}
		if !okb {
			sb = "<absent>"
		}
		out = append(out, fmt.Sprintf("metric %s: A=%s B=%s", k, sa, sb))
	}
	for k := range a {
		report(k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			report(k)
		}
	}
	slices.Sort(out)
	return out
}

func TestExpressLaneDiff(t *testing.T) {
	be := &diffBackend{seen: map[string][]diffEcho{}}
	srv := httptest.NewServer(be)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	// A loopback port nothing listens on, for the host down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closed, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	// Nothing in the configuration may depend on time or chance within
	// the test's run: budgets whose deposits outlive it (ttlSecs 60, a
	// small reserve) and a constant failure accrual backoff longer than
	// it (the default is jittered: random, and probes once it elapses).
	text := `
admin: {port: 0}
routers:
- protocol: http
  label: diff
  dtab: /svc/* => /$/inet/127.0.0.1/` + port + `; /svc/down => /$/inet/127.0.0.1/` + closed + `;
  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc/*
      retries: {budget: {minRetriesPerSec: 1, ttlSecs: 60}}
    - prefix: /svc/retry
      responseClassifier: {kind: io.l5d.http.retryableRead5XX}
  client:
    failureAccrual:
      kind: io.l5d.consecutiveFailures
      failures: 5
      backoff: {kind: constant, ms: 60000}
    requeueBudget: {minRetriesPerSec: 1, ttlSecs: 60}
  servers: [{port: 0}, {port: 0, clearContext: true}]
`
	// Each router gets its own configuration, loaded from the same text.
	start := func(o Options) *Process {
		cfg, err := LoadConfig([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Start(context.Background(), cfg, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop() })
		return p
	}
	// A has the lane; B takes the full path.
	pa := start(Options{Text: []byte(text)})
	pb := start(laneOff(text))

	// Every request goes to both routers in turn, on connections of the
	// same history, so that both routers see the same traffic.
	type pair struct{ a, b *diffConn }
	var conns []*diffConn
	newPair := func(server int) pair {
		p := pair{&diffConn{addr: pa.ServerAddrs()[server]}, &diffConn{addr: pb.ServerAddrs()[server]}}
		conns = append(conns, p.a, p.b)
		return p
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	var seq int
	both := func(p pair, c diffCase, host, target string) (diffResult, diffResult) {
		seq++
		id := strconv.Itoa(seq)
		raw := onHost(c.raw(target, id), host)
		ra := p.a.do(c.method, raw)
		ra.Received = be.take(id)
		rb := p.b.do(c.method, raw)
		rb.Received = be.take(id)
		return ra, rb
	}

	// A trace context from a previous hop: what the backend received
	// through the plain server (sent to both routers, to keep their
	// traffic the same).
	warm := newPair(0)
	ra, rb := both(warm, get1("warm-up"), "web", "/plain")
	var trace string
	if len(ra.Received) == 1 && len(ra.Received[0].Header["l5d-ctx-trace"]) == 1 {
		trace = ra.Received[0].Header["l5d-ctx-trace"][0]
	} else {
		t.Errorf("warm-up: backend received %+v (client %+v); want one request with an l5d-ctx-trace", ra.Received, ra)
	}
	if d := compareResults(ra, rb, false); len(d) > 0 {
		t.Errorf("warm-up differs:\n  %s", strings.Join(d, "\n  "))
	}
	warm.a.close()
	warm.b.close()

	corpus := diffCorpus(trace)
	var requests, diffs int
	lane := map[string]int{} // "case (server n)" → requests the lane served
	pathCount := 0
	for _, h := range diffHosts {
		pathCount += len(h.paths)
	}
	// The counters are compared after every request, to name the request
	// after which each first differs (then it is left to the final
	// comparison); after a few such reports, only the final comparison
	// remains (each report may have waited for a settling that never came).
	diverged := map[string]bool{}
	localized := 0
	localize := func(after string) {
		if localized >= 5 {
			return
		}
		if d := settledMetrics(pa, pb, 500*time.Millisecond, diverged); len(d) > 0 {
			localized++
			t.Errorf("metrics first differ after %s:\n  %s", after, strings.Join(d, "\n  "))
		}
	}
	for server, clear := range []bool{false, true} {
		for _, h := range diffHosts {
			for _, path := range h.paths {
				p := newPair(server)
				for _, c := range corpus {
					before := expressServed(pa, server)
					ra, rb := both(p, c, h.host, path)
					if expressServed(pa, server) > before {
						lane[fmt.Sprintf("%s (server %d)", c.name, server)]++
					}
					requests++
					where := fmt.Sprintf("server %d (clearContext=%v) host %s path %s request %s", server, clear, h.host, path, c.name)
					if ra.Err != "" || rb.Err != "" {
						t.Errorf("%s: A err %q, B err %q", where, ra.Err, rb.Err)
					}
					keep := c.trace && !clear
					if keep && len(ra.Received) > 0 {
						// The kept trace is the inbound one.
						in, _ := base64.StdEncoding.DecodeString(trace)
						out, _ := base64.StdEncoding.DecodeString(first(ra.Received[0].Header["l5d-ctx-trace"]))
						if len(in) >= 32 && len(out) >= 32 && ctxTraceID(in) != ctxTraceID(out) {
							t.Errorf("%s: router A forwarded trace id %s; want the inbound %s", where, ctxTraceID(out), ctxTraceID(in))
						}
					}
					if d := compareResults(ra, rb, keep); len(d) > 0 {
						diffs++
						t.Errorf("%s differs:\n  %s", where, strings.Join(d, "\n  "))
					}
					localize(where)
				}
				// Pipelined requests, written at once: the responses must
				// come back in order, each to its request.
				pipe := []diffCase{corpus[0], corpus[1], get1("pipelined-last")}
				var raws, ids []string
				for _, c := range pipe {
					seq++
					id := strconv.Itoa(seq)
					ids, raws = append(ids, id), append(raws, onHost(c.raw(path, id), h.host))
				}
				run := func(d *diffConn) []diffResult {
					rs := d.pipeline(pipe, raws)
					for i := range rs {
						rs[i].Received = be.take(ids[i])
					}
					return rs
				}
				before := expressServed(pa, server)
				resA, resB := run(p.a), run(p.b)
				if n := expressServed(pa, server) - before; n > 0 {
					lane[fmt.Sprintf("pipelined (server %d)", server)] += int(n)
				}
				for i, c := range pipe {
					requests++
					where := fmt.Sprintf("server %d (clearContext=%v) host %s path %s pipelined request %d %s", server, clear, h.host, path, i, c.name)
					if resA[i].Err != "" || resB[i].Err != "" {
						t.Errorf("%s: A err %q, B err %q", where, resA[i].Err, resB[i].Err)
					}
					if d := compareResults(resA[i], resB[i], false); len(d) > 0 {
						diffs++
						t.Errorf("%s differs:\n  %s", where, strings.Join(d, "\n  "))
					}
				}
				localize(fmt.Sprintf("the pipelined requests to server %d host %s path %s", server, h.host, path))
				// A connection left open must still serve: the router
				// closed none without saying so.
				ra, rb := both(p, get1("keep-alive-probe"), h.host, path)
				requests++
				if d := compareResults(ra, rb, false); ra.Err != "" || rb.Err != "" || len(d) > 0 {
					t.Errorf("server %d host %s path %s: last connection: A err %q, B err %q\n  %s", server, h.host, path, ra.Err, rb.Err, strings.Join(d, "\n  "))
				}
				p.a.close()
				p.b.close()
			}
		}
	}
	t.Logf("%d requests sent to each router, %d differ", requests+1, diffs)
	var laneLog []string
	for _, k := range slices.Sorted(maps.Keys(lane)) {
		laneLog = append(laneLog, fmt.Sprintf("%s ×%d", k, lane[k]))
	}
	t.Logf("requests the lane served (of %d paths and hosts): %s", pathCount, strings.Join(laneLog, ", "))
	if expectExpressUse && lane["get-minimal (server 0)"] == 0 {
		t.Errorf("the lane served no minimal GET on the plain server")
	}

	// Metrics. Counters are updated as each response ends, connection
	// closes when the router notices them: poll (bounded) until both
	// routers agree on every counter and gauge. Then summarise the
	// histograms (they show only a count until their interval rolls) and
	// compare everything.
	settledMetrics(pa, pb, 3*time.Second, map[string]bool{})
	pa.Registry().Roll()
	pb.Registry().Roll()
	ma, mb := fetchMetrics(t, pa), fetchMetrics(t, pb)
	if md := compareMetrics(ma, mb); len(md) > 0 {
		t.Errorf("metrics differ:\n  %s", strings.Join(md, "\n  "))
	}
	if _, ok := ma["rt/diff/service/svc/web/request_latency_ms.p50"]; !ok {
		t.Errorf("after Roll, metrics.json has no request latency percentiles: the histograms were not compared")
	}
	if n := ma["rt/diff/service/svc/web/requests"]; n < float64(requests/2) {
		t.Errorf("rt/diff/service/svc/web/requests = %v; want at least %d (the corpus)", n, requests/2)
	}
	if n := ma["rt/diff/service/svc/retry/retries/total"]; n == 0 {
		t.Errorf("rt/diff/service/svc/retry/retries/total = 0: the corpus exercised no retries")
	}
	for i := range pa.ServerAddrs() {
		k := "rt/diff/server/127.0.0.1/S" + strconv.Itoa(i) + "/express"
		t.Logf("server %d: %v of %v requests took the express lane", i, ma[k], ma["rt/diff/server/127.0.0.1/S"+strconv.Itoa(i)+"/requests"])
		if v := mb[k]; v != 0 {
			t.Errorf("%s = %v on the router without the lane; want 0 or absent", k, v)
		}
		if i == 0 && expectExpressUse {
			if v := ma[k]; v <= 0 {
				t.Errorf("%s = %v on the lane router; want > 0 (the lane never ran)", k, v)
			}
		}
	}
}

// expressServed is the count of requests the lane served on p's server i
// (the counter is updated before the response is written).
func expressServed(p *Process, i int) float64 {
	var n float64
	_, port, _ := net.SplitHostPort(p.ServerAddrs()[i])
	name := "rt/diff/server/127.0.0.1/" + port + "/express"
	p.Registry().Each(func(m telemetry.Metric) {
		if m.Name == name && m.Kind == telemetry.KindCounter {
			n = float64(m.Counter.Value())
		}
	})
	return n
}

// get1 is a minimal GET.
func get1(name string) diffCase {
	return diffCase{name: name, method: "GET", raw: func(t, id string) string {
		return "GET " + t + " HTTP/1.1\r\nHost: web\r\nX-Diff-Id: " + id + "\r\n\r\n"
	}}
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// The comparison machinery itself: it must see differences where they
// are, and none in the values that are random by design.
func TestExpressLaneDiffMachinery(t *testing.T) {
	trace := func(span, parent, traceID byte) string {
		b := make([]byte, 32)
		b[7], b[15], b[23], b[31] = span, parent, traceID, 6
		return base64.StdEncoding.EncodeToString(b)
	}
	res := func(reqid, ctx string, extra ...string) diffResult {
		h := map[string][]string{"l5d-reqid": {reqid}, "l5d-ctx-trace": {ctx}, "x-a": {"1"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = append(h[extra[i]], extra[i+1])
		}
		e := diffEcho{Method: "GET", URI: "/", Proto: "HTTP/1.1", Host: "web", Header: h}
		return diffResult{Status: "HTTP/1.1 200 OK", Header: map[string][]string{"date": {"<date>"}}, Echo: &e, Received: []diffEcho{e}}
	}
	for _, tc := range []struct {
		name string
		a, b diffResult
		keep bool
		want string // a substring of the differences; "" for none
	}{
		{"random ids differ", res("00000000000000aa", trace(1, 1, 0xaa)), res("00000000000000bb", trace(2, 2, 0xbb)), false, ""},
		{"kept trace: span ids differ", res("00000000000000aa", trace(1, 9, 0xaa)), res("00000000000000aa", trace(2, 9, 0xaa)), true, ""},
		{"kept trace: trace ids differ", res("00000000000000aa", trace(1, 9, 0xaa)), res("00000000000000aa", trace(1, 9, 0xbb)), true, "l5d-ctx-trace"},
		{"kept trace: parents differ", res("00000000000000aa", trace(1, 9, 0xaa)), res("00000000000000aa", trace(1, 8, 0xaa)), true, "parent="},
		{"kept trace: request ids differ", res("00000000000000aa", trace(1, 9, 0xaa)), res("00000000000000ab", trace(1, 9, 0xaa)), true, "l5d-reqid"},
		{"bad request id", res("00000000000000aa", trace(1, 1, 1)), res("00000000000000AA", trace(1, 1, 1)), false, "not 16 lower-case hex"},
		{"bad trace", res("00000000000000aa", trace(1, 1, 1)), res("00000000000000aa", "bm9wZQ=="), false, "not base64 of 32 or 40 bytes"},
		{"extra header", res("00000000000000aa", trace(1, 1, 1)), res("00000000000000aa", trace(1, 1, 1), "via", "1.1 linkerd"), false, "header.via"},
		{"header order", res("00000000000000aa", trace(1, 1, 1), "x-b", "1", "x-b", "2"), res("00000000000000aa", trace(1, 1, 1), "x-b", "2", "x-b", "1"), false, "header.x-b"},
	} {
		d := strings.Join(compareResults(tc.a, tc.b, tc.keep), "\n")
		if tc.want == "" && d != "" || tc.want != "" && !strings.Contains(d, tc.want) {
			t.Errorf("%s: differences %q; want %q", tc.name, d, tc.want)
		}
	}
	a, b := res("00000000000000aa", trace(1, 1, 1)), res("00000000000000aa", trace(1, 1, 1))
	b.Closed, b.Received = true, nil
	d := strings.Join(compareResults(a, b, false), "\n")
	if !strings.Contains(d, "client received.Closed") || !strings.Contains(d, "backend received 1 request(s) from A, 0 from B") {
		t.Errorf("closed/lost request: differences %q", d)
	}

	m := map[string]float64{
		"rt/r/service/svc/a/requests":                  3,
		"rt/r/service/svc/a/request_latency_ms.count":  3,
		"rt/r/service/svc/a/request_latency_ms.p50":    4,
		"rt/r/service/svc/a/retries/per_request.count": 3,
		"rt/r/service/svc/a/retries/per_request.max":   0,
		"rt/r/server/127.0.0.1/S0/express":             3,
		"rt/r/client/$/inet/127.0.0.1/1/connects":      2,
	}
	n := maps.Clone(m)
	n["rt/r/service/svc/a/request_latency_ms.p50"] = 7
	delete(n, "rt/r/server/127.0.0.1/S0/express")
	n["rt/r/client/$/inet/127.0.0.1/1/connects"] = 1
	if d := compareMetrics(m, n); len(d) > 0 {
		t.Errorf("exempt metrics reported: %q", d)
	}
	n["rt/r/service/svc/a/request_latency_ms.count"] = 2
	n["rt/r/service/svc/a/retries/per_request.max"] = 1
	delete(n, "rt/r/service/svc/a/requests")
	d = strings.Join(compareMetrics(m, n), "\n")
	for _, want := range []string{"request_latency_ms.count: A=3 B=2", "per_request.max: A=0 B=1", "svc/a/requests: A=3 B=<absent>"} {
		if !strings.Contains(d, want) {
			t.Errorf("metric differences %q; want %q", d, want)
		}
	}
}
