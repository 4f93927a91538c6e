package routerd

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// ignoredOptionConfig returns a one-router linkerd.yaml: the given
// router-level lines (YAML, one key per line) under a router of protocol
// proto, with one loopback server unless the lines set `servers`.
func ignoredOptionConfig(proto, lines string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "routers:\n- protocol: %s\n", proto)
	for l := range strings.Lines(lines) {
		b.WriteString("  " + strings.TrimSpace(l) + "\n")
	}
	if !strings.Contains(lines, "servers:") {
		b.WriteString("  servers: [{port: 4140}]\n")
	}
	return b.String()
}

// TestIgnoredOptionsWarned checks that each option this version accepts
// but does not apply is named at startup and by `linnet check` (both
// print Warnings), and that the same router without the option gets no
// such warning.
func TestIgnoredOptionsWarned(t *testing.T) {
	for _, tt := range []struct {
		name, proto, lines string
		want               []string
	}{
		{"streamAfterContentLengthKB", "http", "streamAfterContentLengthKB: 10",
			[]string{"streamAfterContentLengthKB is ignored: bodies are always streamed, whatever their length"}},
		{"bindingCache sizes", "http", "bindingCache: {paths: 100, clients: 10, idleTtlSecs: 30}",
			[]string{"bindingCache.paths, bindingCache.clients are ignored: the binding caches have no size limit; entries unused for bindingCache.idleTtlSecs (30 s) are closed"}},
		{"bindingCache size on h2", "h2", "bindingCache: {trees: 5}",
			[]string{"bindingCache.trees is ignored: the binding caches have no size limit; entries unused for bindingCache.idleTtlSecs (600 s) are closed"}},
		{"failFast", "http", "client: {failFast: true}",
			[]string{"client.failFast is not supported yet; endpoints are taken out of service by failureAccrual only"}},
		{"failFast on h2", "h2", "client: {failFast: true}",
			[]string{"client.failFast is not supported yet; endpoints are taken out of service by failureAccrual only"}},
		{"clientSession.lifeTimeMs", "http", "client: {clientSession: {idleTimeMs: 1000, lifeTimeMs: 5000}}",
			[]string{"client.clientSession.lifeTimeMs applies to the connections of requests without a body only; a connection that carried a request with a body is closed once idle (clientSession.idleTimeMs or hostConnectionPool.idleTimeMs, else 60 s) and has no maximum lifetime"}},
		{"clientSession.lifeTimeMs on h2", "h2", "client: {clientSession: {lifeTimeMs: 5000}}",
			[]string{"client.clientSession.lifeTimeMs is not supported on h2 routers; a connection to an endpoint is closed once idle (clientSession.idleTimeMs, else 60 s) and has no maximum lifetime"}},
		{"clientSession per prefix", "http",
			"client: {kind: io.l5d.static, configs: [{prefix: /#/io.l5d.fs, clientSession: {idleTimeMs: 1000}}]}",
			[]string{"client.configs[0].clientSession is not supported per prefix; connections to an endpoint are shared by every name, so set it with client kind io.l5d.global"}},
		{"clientSession per prefix on h2", "h2",
			"client: {kind: io.l5d.static, configs: [{prefix: /#/io.l5d.fs, clientSession: {idleTimeMs: 1000}}]}",
			[]string{"client.configs[0].clientSession is not supported per prefix; connections to an endpoint are shared by every name, so set it with client kind io.l5d.global"}},
		{"enableProbation", "http", "client: {loadBalancer: {kind: ewma, enableProbation: true}}",
			[]string{"client.loadBalancer.enableProbation is ignored: an endpoint the namer removes is dropped once its requests in flight finish"}},
		{"hostConnectionPool.minSize", "http", "client: {hostConnectionPool: {minSize: 2, maxSize: 8}}",
			[]string{"client.hostConnectionPool.minSize is not supported yet; no connection is opened before a request needs it"}},
		{"static client entries", "http",
			"client: {kind: io.l5d.static, configs: [{prefix: /#/io.l5d.fs, failFast: false}, {prefix: /#/io.l5d.fs/a, hostConnectionPool: {maxSize: 2}, failFast: true}]}",
			[]string{
				"client.configs[1].failFast is not supported yet; endpoints are taken out of service by failureAccrual only",
				"client.configs[1].hostConnectionPool is not supported per prefix; connections to an endpoint are shared by every name, so set it with client kind io.l5d.global",
			}},
		{"server label", "http", "servers: [{port: 4140, label: inbound}]",
			[]string{"servers[0].label is ignored: server metrics and logs name a server by its address"}},
		{"hostConnectionPool on h2", "h2", "client: {hostConnectionPool: {maxSize: 4}}",
			[]string{"client.hostConnectionPool is ignored on h2 routers: each endpoint gets one multiplexed HTTP/2 connection"}},
		{"h2 client settings per prefix", "h2",
			"client: {kind: io.l5d.static, configs: [{prefix: /#/io.l5d.fs, maxFrameBytes: 32768, initialStreamWindowBytes: 1048576}]}",
			[]string{
				"client.configs[0].initialStreamWindowBytes is not supported per prefix; connections to an endpoint are shared by every name, so set it with client kind io.l5d.global",
				"client.configs[0].maxFrameBytes is not supported per prefix; connections to an endpoint are shared by every name, so set it with client kind io.l5d.global",
			}},
		{"windowUpdateRatio", "h2", "servers: [{port: 4142, windowUpdateRatio: 0.5}]",
			[]string{"servers[0].windowUpdateRatio is ignored: the HTTP/2 server sends WINDOW_UPDATE frames on its own schedule"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig([]byte(ignoredOptionConfig(tt.proto, tt.lines)))
			if err != nil {
				t.Fatal(err)
			}
			prefix := fmt.Sprintf("routers[0] (router %q): ", tt.proto)
			got := Warnings(c)
			for _, w := range tt.want {
				if !slices.Contains(got, prefix+w) {
					t.Errorf("missing warning %q\ngot %q", prefix+w, got)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d warnings, want %d: %q", len(got), len(tt.want), got)
			}
			// The same router without the option: no warning at all.
			bare, err := LoadConfig([]byte(ignoredOptionConfig(tt.proto, "")))
			if err != nil {
				t.Fatal(err)
			}
			if ws := Warnings(bare); len(ws) != 0 {
				t.Errorf("a router without the option got warnings %q", ws)
			}
		})
	}
}

// TestAppliedOptionsNotWarned checks that options this version applies,
// and ignored options written with their default value, give no warning:
// a warning must mean that the file asks for something that does not
// happen.
func TestAppliedOptionsNotWarned(t *testing.T) {
	for _, text := range []string{
		ignoredOptionConfig("http", `bindingCache: {paths: 1000, trees: 1000, bounds: 1000, clients: 1000, idleTtlSecs: 60}
client: {failFast: false, loadBalancer: {kind: p2c, enableProbation: false}, hostConnectionPool: {minSize: 0, maxSize: 10, idleTimeMs: 1000, maxWaiters: 100}}
streamingEnabled: true`),
		ignoredOptionConfig("http", "client: {kind: io.l5d.static, configs: [{prefix: /#/io.l5d.fs, requestAttemptTimeoutMs: 100, loadBalancer: {kind: ewma}}]}"),
		ignoredOptionConfig("h2", `servers: [{port: 4142, windowUpdateRatio: 0.99, maxConcurrentStreamsPerConnection: 10}]
client: {maxFrameBytes: 32768, initialStreamWindowBytes: 1048576, failFast: false}`),
		ignoredOptionConfig("h2", "client: {kind: io.l5d.static, configs: [{prefix: /#/io.l5d.fs, requestAttemptTimeoutMs: 100}]}"),
		// Sessions: applied on both protocols, but for the client's
		// lifeTimeMs (warned above).
		ignoredOptionConfig("http", `servers: [{port: 4140, serverSession: {idleTimeMs: 1000, lifeTimeMs: 5000}}]
client: {clientSession: {idleTimeMs: 1000}, hostConnectionPool: {idleTimeMs: 2000}}`),
		ignoredOptionConfig("h2", `servers: [{port: 4142}, {port: 4143, serverSession: {idleTimeMs: 1000, lifeTimeMs: 5000}}]
client: {clientSession: {idleTimeMs: 1000}}`),
	} {
		c, err := LoadConfig([]byte(text))
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		if ws := Warnings(c); len(ws) != 0 {
			t.Errorf("warnings %q for\n%s", ws, text)
		}
	}
}

// TestH2ZipkinPropagatorApplied: an h2 router with tracePropagator
// io.l5d.zipkin speaks B3 (it used to be warned about as unsupported,
// wrongly): the caller's B3 context is continued to a real h2c backend,
// no l5d-ctx-trace is written, and nothing is warned.
func TestH2ZipkinPropagatorApplied(t *testing.T) {
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s", r.Header.Get("X-B3-TraceId"), r.Header.Get("X-B3-ParentSpanId"), r.Header.Get("l5d-ctx-trace"))
	}))
	be.Config.Protocols = new(http.Protocols)
	be.Config.Protocols.SetUnencryptedHTTP2(true)
	be.Start()
	defer be.Close()
	port := be.Listener.Addr().String()[len("127.0.0.1:"):]
	text := `
admin: {port: 0}
routers:
- protocol: h2
  label: h
  tracePropagator: {kind: io.l5d.zipkin}
  dtab: /svc/web => /$/inet/127.0.0.1/` + port + `;
  servers: [{port: 0}]
`
	c, err := LoadConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if ws := Warnings(c); len(ws) != 0 {
		t.Errorf("warnings %q for an applied tracePropagator", ws)
	}
	p, err := startFrom(t, text)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Transport{Protocols: new(http.Protocols)}
	client.Protocols.SetUnencryptedHTTP2(true)
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+p.ServerAddrs()[0]+"/", nil)
	req.Host = "web"
	req.Header.Set("X-B3-TraceId", "0000000000000abc")
	req.Header.Set("X-B3-SpanId", "0000000000000def")
	req.Header.Set("X-B3-Sampled", "0")
	resp, err := client.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "0000000000000abc|0000000000000def|" {
		t.Errorf("backend saw trace|parent|l5d-ctx-trace = %q (status %d); want the caller's B3 trace continued and no l5d-ctx-trace", b, resp.StatusCode)
	}
}
