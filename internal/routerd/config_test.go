package routerd_test

import (
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/routerd"
)

func mustLoad(t *testing.T, text string) *routerd.Config {
	t.Helper()
	c, err := routerd.LoadConfig([]byte(text))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, "routers:\n- protocol: http\n  servers:\n  - {}\n- protocol: h2\n  servers:\n  - {}\n")
	if c.Admin.Addr() != "127.0.0.1:9990" || c.Admin.ShutdownGraceMs != 10000 {
		t.Errorf("admin = %+v", c.Admin)
	}
	if !c.Usage.Enabled {
		t.Error("usage.enabled should default to true (it is parsed only; nothing is sent)")
	}
	h := c.Routers[0].Value.(*routerd.HTTPRouter)
	if h.Label != "http" || h.DstPrefix.Text != "/svc" || h.BindingTimeoutMs != 10000 || h.Interpreter.Kind != "default" {
		t.Errorf("http router common = %+v", h.RouterCommon)
	}
	if got := h.Servers[0].Addr(); got != "127.0.0.1:4140" {
		t.Errorf("http server = %s, want 127.0.0.1:4140", got)
	}
	if h.MaxHeadersKB != 8 || h.MaxInitialLineKB != 4 || !h.StreamingEnabled || h.StreamAfterKB() != 5 || h.CompressionLevel != -1 || h.TracePropagator.Kind != "io.l5d.default" {
		t.Errorf("http router = %+v", h)
	}
	cl := h.Client.For([]string{"#", "io.l5d.fs", "x"})
	if cl.LoadBalancer.Kind != "p2c" || cl.LoadBalancer.MaxEffort != 5 || cl.FailureAccrual.Kind != "io.l5d.consecutiveFailures" || cl.FailureAccrual.Failures != 5 {
		t.Errorf("client defaults = %+v", cl)
	}
	if b := cl.FailureAccrual.Backoff; b.Kind != "jittered" || b.MinMs != 5000 || b.MaxMs != 300000 {
		t.Errorf("failure accrual backoff = %+v", b)
	}
	if cl.RequeueBudget.PercentCanRetry != 0.2 || cl.RequeueBudget.TTLSecs != 10 || cl.RequeueBudget.MinRetriesPerSec != 10 {
		t.Errorf("requeue budget = %+v", cl.RequeueBudget)
	}
	sv := h.Service.For([]string{"svc", "x"})
	if sv.ResponseClassifier.Kind != "io.l5d.http.nonRetryable5XX" || sv.Retries.Backoff.Kind != "constant" || sv.Retries.Budget.PercentCanRetry != 0.2 {
		t.Errorf("service defaults = %+v", sv)
	}
	h2 := c.Routers[1].Value.(*routerd.H2Router)
	if h2.Label != "h2" || h2.Servers[0].Addr() != "127.0.0.1:4142" || h2.Servers[0].WindowUpdateRatio != 0.99 || h2.Servers[0].MaxConcurrentStreamsPerConnection != 1000 {
		t.Errorf("h2 router = %+v", h2)
	}
	if s := h2.Service.For(nil); s.ResponseClassifier.Kind != "io.l5d.h2.nonRetryable5XX" || s.ClassificationTimeoutMs != 100 || s.RetryBufferSize.RequestBytes != 16383 {
		t.Errorf("h2 service = %+v", s)
	}
	if !c.Admin.IPDefaulted() {
		t.Error("admin ip not given, but IPDefaulted is false")
	}
	if c := mustLoad(t, "admin: {ip: 127.0.0.1}\n"+"routers:\n- protocol: http\n  servers: [{}]\n"); c.Admin.IPDefaulted() {
		t.Error("admin ip given, but IPDefaulted is true")
	}
	d := routerd.Defaults()
	if d.Admin.Addr() != "127.0.0.1:9990" || len(d.Routers) != 0 {
		t.Errorf("Defaults() = %+v", d)
	}
}

func TestFullHTTPRouter(t *testing.T) {
	c := mustLoad(t, `
admin: {ip: 0.0.0.0, port: 9991, security: {uiEnabled: false, pathBlacklist: ["^/admin/shutdown$"]}}
usage: {orgId: acme, enabled: false}
routers:
- protocol: http
  label: out
  dstPrefix: /http
  dtab: |
    # comments are fine
    /svc => /#/io.l5d.fs;
    /svc/x => /$/inet/127.1/8080;
  identifier:
  - kind: io.l5d.header.token
    header: X-Name
  bindingCache: {idleTtlSecs: 60}
  httpAccessLog: /tmp/access.log
  httpAccessLogRollPolicy: daily
  streamingEnabled: true
  streamAfterContentLengthKB: 10
  servers:
  - port: 4140
    ip: 0.0.0.0
    clearContext: true
    maxConcurrentRequests: 100
    addForwardedHeader: {by: {kind: static, label: edge}, for: {kind: ip}}
  client:
    loadBalancer: {kind: ewma, decayTimeMs: 3000}
    failureAccrual: {kind: io.l5d.successRate, successRate: 0.9, requests: 20, backoff: {kind: constant, ms: 100}}
    requestAttemptTimeoutMs: 500
    hostConnectionPool: {minSize: 1, maxSize: 10}
    tls: {commonName: example.com, trustCerts: [/a.pem]}
  service:
    totalTimeoutMs: 2000
    retries:
      budget: {minRetriesPerSec: 5, percentCanRetry: 0.5, ttlSecs: 15}
      backoff: {kind: jittered, minMs: 10, maxMs: 100}
    responseClassifier: {kind: io.l5d.http.retryableRead5XX}
`)
	h := c.Routers[0].Value.(*routerd.HTTPRouter)
	if h.Label != "out" || h.DstPrefix.Path.String() != "/http" || len(h.Dtab.Dtab) != 2 || !strings.Contains(h.Dtab.Text, "# comments") {
		t.Errorf("router = %+v", h.RouterCommon)
	}
	if len(h.Identifier) != 1 || h.Identifier[0].Kind != "io.l5d.header.token" {
		t.Errorf("identifier = %+v", h.Identifier)
	}
	if h.BindingCache.IdleTTLSecs != 60 || h.BindingCache.Paths != 1000 {
		t.Errorf("bindingCache = %+v", h.BindingCache)
	}
	if al := h.AccessLog(); al.Path != "/tmp/access.log" || al.RollPolicy != "daily" || !al.Append || al.RotateCount != -1 {
		t.Errorf("access log = %+v", al)
	}
	s := h.Servers[0]
	if !s.ClearContext || s.MaxConcurrentRequests != 100 || s.AddForwardedHeader.By.Label != "edge" || s.AddForwardedHeader.For.Kind != "ip" {
		t.Errorf("server = %+v", s)
	}
	cl := h.Client.For(nil)
	if cl.LoadBalancer.Kind != "ewma" || cl.LoadBalancer.DecayTimeMs != 3000 || cl.LoadBalancer.MaxEffort != 5 {
		t.Errorf("lb = %+v", cl.LoadBalancer)
	}
	if fa := cl.FailureAccrual; fa.Kind != "io.l5d.successRate" || fa.SuccessRate != 0.9 || fa.Requests != 20 || fa.Backoff != (routerd.Backoff{Kind: "constant", Ms: 100}) {
		t.Errorf("failure accrual = %+v", fa)
	}
	if cl.TLS == nil || cl.TLS.CommonName != "example.com" || !cl.TLS.Enabled || cl.HostConnectionPool.MaxSize != 10 || cl.RequestAttemptTimeoutMs != 500 {
		t.Errorf("client = %+v", cl)
	}
	sv := h.Service.For(nil)
	if sv.TotalTimeoutMs != 2000 || sv.Retries.Budget.TTLSecs != 15 || sv.Retries.Backoff.MaxMs != 100 || sv.ResponseClassifier.Kind != "io.l5d.http.retryableRead5XX" {
		t.Errorf("service = %+v", sv)
	}
	if c.Admin.Security.UIEnabled || !c.Admin.Security.ControlEnabled || !c.Admin.Security.PathBlacklist[0].Re.MatchString("/admin/shutdown") {
		t.Errorf("admin security = %+v", c.Admin.Security)
	}
}

func TestStaticPolicy(t *testing.T) {
	c := mustLoad(t, `
routers:
- protocol: http
  servers: [{}]
  client:
    kind: io.l5d.static
    configs:
    - prefix: /
      requestAttemptTimeoutMs: 100
      loadBalancer: {kind: roundRobin}
    - prefix: "/$/io.buoyant.rinet/443/{service}"
      tls:
        commonName: "{service}"
    - prefix: "/$/io.buoyant.rinet/*/slow.example"
      requestAttemptTimeoutMs: 5000
  service:
    kind: io.l5d.static
    configs:
    - prefix: /svc/web
      totalTimeoutMs: 50
`)
	h := c.Routers[0].Value.(*routerd.HTTPRouter)
	p := func(s string) []string { return strings.Split(strings.Trim(s, "/"), "/") }
	a := h.Client.For(p("/$/io.buoyant.rinet/443/example.com"))
	if a.TLS == nil || a.TLS.CommonName != "example.com" || a.RequestAttemptTimeoutMs != 100 || a.LoadBalancer.Kind != "roundRobin" {
		t.Errorf("443 client = %+v tls=%+v", a, a.TLS)
	}
	b := h.Client.For(p("/$/io.buoyant.rinet/80/slow.example"))
	if b.TLS != nil || b.RequestAttemptTimeoutMs != 5000 || b.LoadBalancer.Kind != "roundRobin" {
		t.Errorf("slow client = %+v", b)
	}
	if s := h.Service.For(p("/svc/web/x")); s.TotalTimeoutMs != 50 {
		t.Errorf("web service = %+v", s)
	}
	if s := h.Service.For(p("/svc/other")); s.TotalTimeoutMs != 0 || s.ResponseClassifier.Kind != "io.l5d.http.nonRetryable5XX" {
		t.Errorf("other service = %+v", s)
	}
}

// TestErrors holds the messages users see for typical mistakes.
func TestErrors(t *testing.T) {
	const router = "routers:\n- protocol: http\n  servers:\n  - port: 4140\n"
	tests := []struct{ name, text, want string }{
		{"no routers", "admin: {port: 9990}\n", "routers: at least one router is required (line 1)"},
		{"empty file", "", "routers: at least one router is required"},
		{"unknown protocol", "routers:\n- protocol: htp\n  servers: [{}]\n", `routers[0].protocol: unknown protocol "htp"; did you mean "http"? (known: h2, http, thrift, thriftmux) (line 2)`},
		{"thriftmux", "routers:\n- protocol: thriftmux\n  servers: [{}]\n", "routers[0].protocol: protocol thriftmux is experimental and requires `experimental: true`"},
		{"mux", "routers:\n- protocol: mux\n  thriftMethodInDst: true\n", `routers[0].protocol: protocol "mux" is a Linkerd 1.x option not supported by this version (line 2)`},
		{"missing protocol", "routers:\n- servers: [{}]\n", "routers[0]: missing `protocol` (known: h2, http, thrift, thriftmux) (line 2)"},
		{"no servers", "routers:\n- protocol: http\n", "routers[0]: missing required key `servers` (line 2)"},
		{"empty servers", "routers:\n- protocol: http\n  servers: []\n", "routers[0].servers: at least one server is required (line 3)"},
		{"key typo", router + "  dtabb: /a=>/b\n", `routers[0].dtabb: unknown key "dtabb"; did you mean "dtab"? (line 5)`},
		{"bad dtab one line", router + "  dtab: /svc => /#/io.l5d.fs;;\n", `routers[0].dtab: invalid dtab: '/' expected but ';' found at '/svc => /#/io.l5d.fs;[;]' (line 5)`},
		{"bad dtab multi line", router + "  dtab: |\n    /svc => /#/io.l5d.fs;\n    /x => y;\n", `routers[0].dtab: invalid dtab: simple expected but 'y' found at '/x => [y];' (line 7)`},
		{"bad dstPrefix", router + "  dstPrefix: svc\n", `routers[0].dstPrefix: invalid path "svc": '/' expected but 's' found at '[s]vc' (line 5)`},
		{"duplicate label", router + "- protocol: http\n  servers: [{port: 4141}]\n", `routers[1].label: label "http" is already used by routers[0]; give each router a unique label (it defaults to the protocol name) (line 5)`},
		{"port clash", router + "- protocol: http\n  label: b\n  servers: [{port: 4140, ip: 0.0.0.0}]\n", "routers[1].servers[0].port: 0.0.0.0:4140 conflicts with routers[0].servers[0], which binds 127.0.0.1:4140 (line 7)"},
		{"admin clash", "admin: {port: 4140}\n" + router, "routers[0].servers[0].port: 127.0.0.1:4140 conflicts with admin, which binds 127.0.0.1:4140 (line 5)"},
		{"bad ip", "routers:\n- protocol: http\n  servers: [{ip: localhost}]\n", `routers[0].servers[0].ip: "localhost" is not an IP address (Linkerd takes literal addresses such as 0.0.0.0 or 127.0.0.1) (line 3)`},
		{"bad port", "routers:\n- protocol: http\n  servers:\n  - port: 70000\n", "routers[0].servers[0].port: port 70000 out of range 0-65535 (line 4)"},
		{"port as string", "routers:\n- protocol: http\n  servers:\n  - port: http\n", `routers[0].servers[0].port: expected an integer, got a string ("http") (line 4)`},
		{"h2 key on http", router + "  h2AccessLog: x\n", "routers[0].h2AccessLog: `h2AccessLog` applies to protocol h2 routers, not http (line 5)"},
		{"h2 server key on http", "routers:\n- protocol: http\n  servers:\n  - windowUpdateRatio: 0.5\n", "routers[0].servers[0].windowUpdateRatio: `windowUpdateRatio` applies to servers of protocol h2 routers, not http (line 4)"},
		{"http key on h2", "routers:\n- protocol: h2\n  servers: [{}]\n  maxHeadersKB: 16\n", "routers[0].maxHeadersKB: `maxHeadersKB` applies to protocol http routers, not h2 (line 4)"},
		{"unsupported key", "routers:\n- protocol: http\n  servers:\n  - socketOptions: {}\n", "routers[0].servers[0].socketOptions: `socketOptions` is a Linkerd 1.x option not supported by this version (line 4)"},
		{"unknown namer", "namers:\n- kind: io.l5d.nope\n" + router, `namers[0].kind: unknown kind "io.l5d.nope"`},
		{"baseDtab", "routers:\n- protocol: http\n  baseDtab: /svc => /#/io.l5d.fs;\n  servers: [{}]\n", "routers[0].baseDtab: `baseDtab` is Linkerd 0.x's name for `dtab`: rename the key (line 3)"},
		{"baseDtab on thrift", "routers:\n- protocol: thrift\n  baseDtab: /svc => /#/io.l5d.fs;\n  servers: [{}]\n", "routers[0].baseDtab: `baseDtab` is Linkerd 0.x's name for `dtab`: rename the key (line 3)"},
		{"duplicate namer prefix", "namers:\n- kind: io.l5d.fs\n  rootDir: a\n- kind: io.l5d.fs\n  rootDir: b\n" + router, "namers[1].prefix: prefix io.l5d.fs is already used by namers[0] (line 4)"},
		{"duplicate namer prefix with slash", "namers:\n- kind: io.l5d.fs\n  rootDir: a\n  prefix: /x\n- kind: io.l5d.fs\n  rootDir: b\n  prefix: x\n" + router, "namers[1].prefix: prefix x is already used by namers[0] (line 7)"},
		{"unsupported namer", "namers:\n- kind: io.l5d.rancher\n" + router, `namers[0].kind: kind "io.l5d.rancher" is a Linkerd 1.x option not supported by this version (line 2)`},
		{"lb param of other kind", router + "  client:\n    loadBalancer: {kind: p2c, decayTimeMs: 1}\n", "routers[0].client.loadBalancer.decayTimeMs: `decayTimeMs` does not apply to load balancer kind p2c (line 6)"},
		{"lb kind", router + "  client:\n    loadBalancer: {kind: random}\n", `routers[0].client.loadBalancer.kind: unknown load balancer kind "random" (known: aperture, ewma, heap, p2c, roundRobin) (line 6)`},
		{"accrual required", router + "  client:\n    failureAccrual:\n      kind: io.l5d.successRate\n      successRate: 0.9\n", "routers[0].client.failureAccrual: failure accrual kind io.l5d.successRate needs `requests` (line 7)"},
		{"jittered backoff", router + "  service:\n    retries:\n      backoff: {kind: jittered, minMs: 10}\n", "routers[0].service.retries.backoff: backoff kind jittered needs `maxMs` (line 7)"},
		{"budget range", router + "  service:\n    retries:\n      budget: {ttlSecs: 0}\n", "routers[0].service.retries.budget.ttlSecs: must be between 1 and 60, got 0 (line 7)"},
		{"classifier kind", router + "  service:\n    responseClassifier: {kind: io.l5d.h2.grpc.default}\n", `routers[0].service.responseClassifier.kind: unknown http response classifier kind "io.l5d.h2.grpc.default"`},
		{"client tls", router + "  client:\n    tls: {trustCerts: [/a.pem]}\n", "routers[0].client.tls.commonName: client TLS needs `commonName` (the name the server certificate must carry) unless disableValidation is true (line 6)"},
		{"server tls", "routers:\n- protocol: http\n  servers:\n  - tls: {certPath: /c.pem}\n", "routers[0].servers[0].tls: missing required key `keyPath` (line 4)"},
		{"static unknown var", router + "  client:\n    kind: io.l5d.static\n    configs:\n    - prefix: /x/{a}\n      tls: {commonName: \"{b}\"}\n", "routers[0].client.configs[0].tls.commonName: {b} is not captured by prefix /x/{a} (line 9)"},
		{"static stray key", router + "  client:\n    kind: io.l5d.static\n    requestAttemptTimeoutMs: 1\n    configs: []\n", "routers[0].client.requestAttemptTimeoutMs: `requestAttemptTimeoutMs` cannot be set beside kind io.l5d.static; put it in a configs entry (line 7)"},
		{"global var", router + "  client:\n    tls: {commonName: \"{service}\"}\n", "routers[0].client.tls.commonName: {service} can only be used with kind io.l5d.static, where the prefix captures it (line 6)"},
		{"streaming", router + "  streamingEnabled: false\n  streamAfterContentLengthKB: 5\n", "routers[0].streamAfterContentLengthKB: cannot be set when streamingEnabled is false (line 6)"},
		{"experimental on identifier", router + "  identifier: {kind: io.l5d.header.token, experimental: true}\n", `routers[0].identifier.experimental: unknown key "experimental"`},
		{"json", `{"routers": [{"protocol": "http", "servers": [{"port": "x"}]}]}`, `routers[0].servers[0].port: expected an integer, got a string ("x") (line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := routerd.LoadConfig([]byte(tt.text))
			if err == nil {
				t.Fatalf("loaded; want error %q", tt.want)
			}
			errs := config.AsErrors(err)
			if !strings.HasPrefix(errs[0].Error(), tt.want) {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestSeveralErrorsReported(t *testing.T) {
	_, err := routerd.LoadConfig([]byte("admin: {prot: 1}\nrouters:\n- protocol: http\n  servers: [{port: x}]\n  dtab: '/a => '\n"))
	if n := len(config.AsErrors(err)); n != 3 {
		t.Errorf("got %d errors, want 3:\n%v", n, err)
	}
}

// TestManyErrors checks that problems beyond the reported maximum still
// keep Validate hooks from running on values that failed to decode.
func TestManyErrors(t *testing.T) {
	var b strings.Builder
	for i := range 60 {
		b.WriteString("bogus" + strings.Repeat("x", i) + ": 1\n")
	}
	b.WriteString("routers:\n- protocol: nope\n  servers: [{}]\n")
	_, err := routerd.LoadConfig([]byte(b.String()))
	if n := len(config.AsErrors(err)); n != 50 {
		t.Errorf("got %d errors, want the first 50", n)
	}
}
