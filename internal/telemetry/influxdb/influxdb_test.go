package influxdb

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/telemetrytest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// Cases from Linkerd 1's InfluxDbTelemeterTest, on our registry.
func TestLinkerdCases(t *testing.T) {
	for _, tc := range []struct {
		name   string
		record func(root telemetry.Scope)
		want   string
	}{
		{"counter", func(r telemetry.Scope) { r.Scope("foo", "bar").Counter("bas").Inc() }, "foo:bar,host=none bas=1\n"},
		{"counters with no scope", func(r telemetry.Scope) { r.Counter("abc").Inc(); r.Counter("def").Add(2) }, "root,host=none abc=1,def=2\n"},
		{"gauge", func(r telemetry.Scope) { r.Scope("foo", "bar").Gauge("bas", func() float64 { return 1 }) }, "foo:bar,host=none bas=1.0\n"},
		{"stat", func(r telemetry.Scope) {
			s := r.Scope("foo", "bar").Stat("bas")
			s.Add(1)
			s.Add(2)
			r.Registry().Roll()
		}, "foo:bar,host=none bas_avg=1.5,bas_count=2,bas_max=2,bas_min=1,bas_p50=1,bas_p90=2,bas_p95=2,bas_p99=2,bas_p999=2,bas_p9999=2,bas_sum=3\n"},
		{"stat before its first interval", func(r telemetry.Scope) { r.Scope("foo").Stat("bas").Add(1) }, ""},
		{"path stats are labelled", func(r telemetry.Scope) {
			telemetry.ServiceScope(telemetry.RouterScope(r, "incoming"), "/svc/foo").Counter("requests").Inc()
		}, "rt:service,host=none,rt=incoming,service=svc/foo requests=1\n"},
		{"bound stats with path scope are labelled", func(r telemetry.Scope) {
			c := telemetry.ClientScope(telemetry.RouterScope(r, "incoming"), "/#/bar")
			telemetry.ClientServiceScope(c, "/svc/foo").Counter("requests").Inc()
		}, "rt:client:service,client=#/bar,host=none,rt=incoming,service=svc/foo requests=1\n"},
		{"server stats are labelled", func(r telemetry.Scope) {
			telemetry.ServerScope(telemetry.RouterScope(r, "incoming"), "127.0.0.1", 4141).Counter("requests").Inc()
		}, "rt:server,host=none,rt=incoming,server=127.0.0.1/4141 requests=1\n"},
		{"escaping", func(r telemetry.Scope) {
			telemetry.ServiceScope(telemetry.RouterScope(r, "in"), "/svc/a b,c=d").Counter("requests").Inc()
		}, `rt:service,host=none,rt=in,service=svc/a\ b\,c\=d requests=1` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := telemetry.NewRegistry()
			tc.record(reg.Scope())
			if got := string(Lines(reg, "none")); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestGoldenAndTelemeter(t *testing.T) {
	var d struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	if err := config.Load([]byte("telemetry:\n- kind: io.l5d.influxdb\n"), &d); err != nil {
		t.Fatal(err)
	}
	reg := telemetry.NewRegistry()
	telemetrytest.Script(reg)
	tm, err := d.Telemetry[0].Value.NewTelemeter(telemetry.TelemeterEnv{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	hs := tm.AdminHandlers()
	if len(hs) != 1 || hs[0].Path != Path {
		t.Fatalf("%+v", hs)
	}
	srv := httptest.NewServer(hs[0].Handler)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+Path, nil)
	req.Host = "l5d-host"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	telemetrytest.Golden(t, "testdata/influxdb.golden", body, *update)
	if !strings.Contains(string(body), "rt:server,host=l5d-host,rt=outgoing,server=0.0.0.0/4140 ") {
		t.Errorf("no server line:\n%s", body)
	}
	// Every line parses as measurement[,tags] fields.
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		parts := strings.Split(strings.ReplaceAll(l, `\ `, "_"), " ")
		if len(parts) != 2 || !strings.Contains(parts[1], "=") {
			t.Errorf("malformed line %q", l)
		}
	}
}
