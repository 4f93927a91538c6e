package routerd_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/cli"
	"github.com/linnet-mesh/linnet/internal/namer/consul"
	"github.com/linnet-mesh/linnet/internal/namer/k8s"
	_ "github.com/linnet-mesh/linnet/internal/plugins"
	"github.com/linnet-mesh/linnet/internal/routerd"
	"github.com/linnet-mesh/linnet/internal/telemetry/statsd"
	"github.com/linnet-mesh/linnet/internal/telemetry/zipkin"
)

// quotedLinkerdYAML quotes its numbers and booleans the way Helm-templated
// ConfigMaps do; Linkerd 1.x (Jackson) loaded it.
const quotedLinkerdYAML = `admin:
  ip: 127.0.0.1
  port: '9991'
  shutdownGraceMs: "5000"
  security: {uiEnabled: 'false', controlEnabled: "True"}
namers:
- kind: io.l5d.k8s
  experimental: 'true'
  host: localhost
  port: '8001'
- kind: io.l5d.consul
  port: " 8500 "
  useHealthCheck: "true"
  setHost: 'True'
  weights: [{tag: canary, weight: '0.1'}]
telemetry:
- kind: io.l5d.statsd
  experimental: "true"
  port: '8125'
  gaugeIntervalMs: '5000'
  sampleRate: "0.5"
- kind: io.l5d.zipkin
  port: "9411"
  sampleRate: '1.0'
- kind: io.l5d.prometheus
routers:
- protocol: http
  label: out
  dtab: /svc => /#/io.l5d.k8s/default/http
  servers:
  - port: '4140'
    ip: 127.0.0.1
    clearContext: 'true'
    maxConcurrentRequests: "100"
  client:
    requestAttemptTimeoutMs: '500'
    failFast: "false"
    loadBalancer: {kind: ewma, decayTimeMs: '3000', maxEffort: "7"}
    failureAccrual: {kind: io.l5d.successRate, successRate: '0.9', requests: "20", backoff: {kind: constant, ms: '100'}}
    hostConnectionPool: {minSize: '1', maxSize: "10"}
    requeueBudget: {percentCanRetry: '0.25', minRetriesPerSec: "3", ttlSecs: '20'}
  service:
    totalTimeoutMs: "2000"
    retries:
      budget: {minRetriesPerSec: '5', percentCanRetry: "0.5", ttlSecs: '15'}
      backoff: {kind: jittered, minMs: '10', maxMs: "100"}
- protocol: h2
  experimental: 'true'
  label: h2
  servers:
  - port: "4142"
    windowUpdateRatio: '0.9'
    maxConcurrentStreamsPerConnection: '500'
`

// A linkerd.yaml with quoted numbers and booleans in admin, routers,
// namers and telemetry loads with the values Linkerd read, and passes
// `linnet check`.
func TestQuotedNumbersLinkerdYAML(t *testing.T) {
	c := mustLoad(t, quotedLinkerdYAML)
	if c.Admin.Port != 9991 || c.Admin.ShutdownGraceMs != 5000 || c.Admin.Security.UIEnabled || !c.Admin.Security.ControlEnabled {
		t.Errorf("admin = %+v", c.Admin)
	}

	if len(c.Namers) != 2 {
		t.Fatalf("namers = %+v", c.Namers)
	}
	if kc, ok := c.Namers[0].Value.(*k8s.Config); !ok || kc.Port != 8001 || !kc.Experimental {
		t.Errorf("k8s namer = %#v", c.Namers[0].Value)
	}
	if cc, ok := c.Namers[1].Value.(*consul.Config); !ok || cc.Port != 8500 || !cc.UseHealthCheck || !cc.SetHost ||
		len(cc.Weights) != 1 || cc.Weights[0].Weight != 0.1 {
		t.Errorf("consul namer = %#v", c.Namers[1].Value)
	}

	if len(c.Telemetry) != 3 {
		t.Fatalf("telemetry = %+v", c.Telemetry)
	}
	if sc, ok := c.Telemetry[0].Value.(*statsd.Config); !ok || sc.Port != 8125 || sc.GaugeIntervalMs != 5000 || sc.SampleRate != 0.5 || !sc.Experimental {
		t.Errorf("statsd = %#v", c.Telemetry[0].Value)
	}
	if zc, ok := c.Telemetry[1].Value.(*zipkin.Config); !ok || zc.Port != 9411 || zc.SampleRate != 1 {
		t.Errorf("zipkin = %#v", c.Telemetry[1].Value)
	}

	h := c.Routers[0].Value.(*routerd.HTTPRouter)
	if s := h.Servers[0]; s.Addr() != "127.0.0.1:4140" || !s.ClearContext || s.MaxConcurrentRequests != 100 {
		t.Errorf("http server = %+v", s)
	}
	cl := h.Client.For(nil)
	if cl.RequestAttemptTimeoutMs != 500 || cl.FailFast || cl.LoadBalancer.DecayTimeMs != 3000 || cl.LoadBalancer.MaxEffort != 7 {
		t.Errorf("client = %+v", cl)
	}
	if fa := cl.FailureAccrual; fa.SuccessRate != 0.9 || fa.Requests != 20 || fa.Backoff.Ms != 100 {
		t.Errorf("failure accrual = %+v", fa)
	}
	if p := cl.HostConnectionPool; p.MinSize != 1 || p.MaxSize != 10 {
		t.Errorf("host connection pool = %+v", p)
	}
	if b := cl.RequeueBudget; b.PercentCanRetry != 0.25 || b.MinRetriesPerSec != 3 || b.TTLSecs != 20 {
		t.Errorf("requeue budget = %+v", b)
	}
	sv := h.Service.For(nil)
	if sv.TotalTimeoutMs != 2000 {
		t.Errorf("service = %+v", sv)
	}
	if b := sv.Retries.Budget; b.MinRetriesPerSec != 5 || b.PercentCanRetry != 0.5 || b.TTLSecs != 15 {
		t.Errorf("retries budget = %+v", b)
	}
	if b := sv.Retries.Backoff; b.Kind != "jittered" || b.MinMs != 10 || b.MaxMs != 100 {
		t.Errorf("retries backoff = %+v", b)
	}
	h2 := c.Routers[1].Value.(*routerd.H2Router)
	if s := h2.Servers[0]; s.Addr() != "127.0.0.1:4142" || s.WindowUpdateRatio != 0.9 || s.MaxConcurrentStreamsPerConnection != 500 {
		t.Errorf("h2 server = %+v", s)
	}

	// The same text through `linnet check`.
	path := filepath.Join(t.TempDir(), "linkerd.yaml")
	if err := os.WriteFile(path, []byte(quotedLinkerdYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errw bytes.Buffer
	if code := cli.Main([]string{"check", path}, strings.NewReader(""), &out, &errw); code != 0 {
		t.Fatalf("linnet check: exit %d, stdout %q, stderr %q", code, out.String(), errw.String())
	}
	if want := path + ": OK (2 routers, 2 namers, 3 telemeters)\n"; !strings.HasSuffix(out.String(), want) {
		t.Errorf("linnet check: stdout %q, want it to end with %q", out.String(), want)
	}
}

// Quoted text that is not a value of the field's type is still refused,
// naming the field, the line and the text, at load and by `linnet check`.
func TestQuotedNumbersRefused(t *testing.T) {
	const router = "routers:\n- protocol: http\n  servers:\n"
	tests := []struct{ name, text, want string }{
		{"admin port", "admin:\n  ip: 127.0.0.1\n  port: \"abc\"\n" + router + "  - port: 4140\n",
			`admin.port: expected an integer, got a string ("abc") (line 3)`},
		{"empty port", router + "  - port: ''\n",
			`routers[0].servers[0].port: expected an integer, got a string ("") (line 4)`},
		{"port out of range", router + "  - port: '70000'\n",
			`routers[0].servers[0].port: port 70000 out of range 0-65535 (line 4)`},
		{"fraction for an integer", router + "  - port: 4140\n  client: {requestAttemptTimeoutMs: '1.5'}\n",
			`routers[0].client.requestAttemptTimeoutMs: expected an integer, got a string ("1.5") (line 5)`},
		{"percent", router + "  - port: 4140\n  service:\n    retries:\n      budget: {percentCanRetry: '20%'}\n",
			`routers[0].service.retries.budget.percentCanRetry: expected a number, got a string ("20%") (line 7)`},
		{"boolean", router + "  - port: 4140\n    clearContext: 'yes'\n",
			`routers[0].servers[0].clearContext: expected a boolean (true or false), got a string ("yes") (line 5)`},
		{"telemetry", router + "  - port: 4140\ntelemetry:\n- kind: io.l5d.zipkin\n  sampleRate: 'half'\n",
			`telemetry[0].sampleRate: expected a number, got a string ("half") (line 7)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := routerd.LoadConfig([]byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadConfig: %v\nwant %s", err, tt.want)
			}
			path := filepath.Join(t.TempDir(), "linkerd.yaml")
			if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errw bytes.Buffer
			if code := cli.Main([]string{"check", path}, strings.NewReader(""), &out, &errw); code != 1 {
				t.Fatalf("linnet check: exit %d, want 1; stdout %q", code, out.String())
			}
			msg, _, _ := strings.Cut(tt.want, " (line")
			if !strings.Contains(out.String(), msg) {
				t.Errorf("linnet check: stdout %q, want %q", out.String(), msg)
			}
		})
	}
}
