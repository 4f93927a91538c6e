package prometheus

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/telemetrytest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return string(b)
}

func TestConvert(t *testing.T) {
	for _, tc := range []struct {
		path []string
		want string
	}{
		{[]string{"rt", "outgoing", "server", "0.0.0.0/4140", "requests"}, `rt:server:requests{rt="outgoing",server="0.0.0.0/4140"}`},
		{[]string{"rt", "outgoing", "service", "svc/world", "requests"}, `rt:service:requests{rt="outgoing",service="svc/world"}`},
		{[]string{"rt", "outgoing", "client", "$/inet/127.1/8888", "service", "svc/hello", "success"}, `rt:client:service:success{rt="outgoing",client="$/inet/127.1/8888",service="svc/hello"}`},
		{[]string{"rt", "outgoing", "client", "$/inet/127.1/8888", "failures", "com.twitter.finagle.ChannelWriteException"}, `rt:client:failures{rt="outgoing",client="$/inet/127.1/8888",exception="com.twitter.finagle.ChannelWriteException"}`},
		{[]string{"rt", "o", "client", "c", "exn", "a", "b"}, `rt:client:exceptions{rt="o",client="c",exception="a:b"}`},
		{[]string{"rt", "o", "client", "c", "status", "2XX"}, `rt:client:status:2XX{rt="o",client="c"}`},
		{[]string{"rt", "o", "client", "c", "failure_accrual", "removed_for_ms"}, `rt:client:failure_accrual:removed_for_ms{rt="o",client="c"}`},
		{[]string{"rt", "o", "bindcache", "path", "misses"}, `rt:bindcache:path:misses{rt="o"}`},
		{[]string{"namer", "io.l5d.fs", "lookups"}, `namer:io_l5d_fs:lookups{}`},
		{[]string{"9lives", "x-y"}, `_9lives:x_y{}`},
	} {
		s := convert("", tc.path)
		var b strings.Builder
		b.WriteString(s.name + "{")
		for i, l := range s.labels {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(l.k + `="` + l.v + `"`)
		}
		b.WriteString("}")
		if b.String() != tc.want {
			t.Errorf("%v: got %s, want %s", tc.path, b.String(), tc.want)
		}
	}
	if got := convert("linkerd_", []string{"rt", "r", "x"}).name; got != "linkerd_rt:x" {
		t.Errorf("prefix: %s", got)
	}
}

func TestPrometheusGolden(t *testing.T) {
	reg := telemetry.NewRegistry()
	telemetrytest.Script(reg)
	out := scrape(t, Handler(reg, Options{}))
	telemetrytest.Golden(t, "testdata/prometheus.golden", []byte(out), *update)
	for _, line := range []string{
		`rt:server:requests{rt="outgoing",server="0.0.0.0/4140"} 42`,
		`rt:client:service:success{client="%/io.l5d.k8s.daemonset/default/incoming/l5d/#/io.l5d.k8s/default/http/world-v1",rt="outgoing",service="svc/world"} 40`,
		`rt:client:failures{client="$/inet/127.1/8888",rt="incoming"} 0`,
		`rt:server:failures{exception="ConnectionFailed",rt="outgoing",server="0.0.0.0/4140"} 1`,
		`rt:server:request_latency_ms{rt="outgoing",server="0.0.0.0/4140",quantile="0.99"} 25`,
		`rt:server:request_latency_ms{rt="outgoing",server="0.0.0.0/4140",quantile="0"} 1`,
		`rt:server:request_latency_ms_count{rt="outgoing",server="0.0.0.0/4140"} 42`,
		`rt:server:request_latency_ms_sum{rt="outgoing",server="0.0.0.0/4140"} 248`,
		`rt:service:requests{rt="incoming",service="svc/we\"ird\\name"} 1`,
		`rt:client:loadbalancer:size{client="%/io.l5d.k8s.daemonset/default/incoming/l5d/#/io.l5d.k8s/default/http/world-v1",rt="outgoing"} 3`,
		`namer:io_l5d_fs:lookups 7`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("output lacks %s", line)
		}
	}
	// A histogram with no samples in the last interval is left out.
	if strings.Contains(out, "rt:dtab:size") {
		t.Error("empty histogram exported")
	}
}

func TestInvalidUTF8LabelIsRepaired(t *testing.T) {
	reg := telemetry.NewRegistry()
	telemetry.ClientScope(telemetry.RouterScope(reg.Scope(), "r"), "/$/inet/bad\xff/80").Counter("requests").Inc()
	out := scrape(t, Handler(reg, Options{}))
	if !strings.Contains(out, "rt:client:requests{client=\"$/inet/bad\uFFFD/80\",rt=\"r\"} 1") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestPromtoolAcceptsOutput(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install the Debian package prometheus (scripts/test-deps.sh)")
	}
	reg := telemetry.NewRegistry()
	telemetrytest.Script(reg)
	for _, opts := range []Options{{}, {Prefix: "linkerd_", Runtime: true}} {
		out := scrape(t, Handler(reg, opts))
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(out)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == promtoolLintExit) {
			t.Fatalf("promtool check metrics (%+v): %v\n%s", opts, err, stderr.String())
		}
		// Lint findings are allowed only where Linkerd's naming scheme
		// requires them: ':' separators and the _ms unit suffix.
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			if line == "" {
				continue
			}
			if !strings.HasSuffix(line, "metric names should not contain ':'") &&
				!strings.HasSuffix(line, "metric names should not contain abbreviated units") {
				t.Errorf("promtool (%+v): %s", opts, line)
			}
		}
	}
}

// promtoolLintExit is promtool's exit status for lint findings (a parse
// error exits with 1).
const promtoolLintExit = 3

func TestConfig(t *testing.T) {
	type doc struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	var d doc
	if err := config.Load([]byte("telemetry:\n- kind: io.l5d.prometheus\n  prefix: linkerd_\n  experimental: true\n"), &d); err != nil {
		t.Fatal(err)
	}
	c := d.Telemetry[0].Value.(*Config)
	if c.Path != DefaultPath || c.Prefix != "linkerd_" {
		t.Fatalf("%+v", c)
	}
	reg := telemetry.NewRegistry()
	reg.Scope().Scope("rt", "r", "server", "0.0.0.0/80").Counter("requests").Inc()
	tm, err := c.NewTelemeter(telemetry.TelemeterEnv{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	hs := tm.AdminHandlers()
	if len(hs) != 1 || hs[0].Path != DefaultPath {
		t.Fatalf("handlers %+v", hs)
	}
	out := scrape(t, hs[0].Handler)
	if !strings.Contains(out, `linkerd_rt:server:requests{rt="r",server="0.0.0.0/80"} 1`) || !strings.Contains(out, "go_goroutines") {
		t.Fatalf("telemeter output:\n%s", out)
	}
	for _, bad := range []struct{ text, want string }{
		{"telemetry:\n- kind: io.l5d.prometheus\n  path: metrics\n", "telemetry[0].path"},
		{"telemetry:\n- kind: io.l5d.prometheus\n  prefix: 'a b'\n", "telemetry[0].prefix"},
		{"telemetry:\n- kind: io.l5d.prometheus\n  prefx: x\n", "prefx"},
	} {
		err := config.Load([]byte(bad.text), &doc{})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: got %v, want an error naming %s", bad.text, err, bad.want)
		}
	}
}
