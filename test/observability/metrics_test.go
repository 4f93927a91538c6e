package observability

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// trafficMix sends a fixed, sequential mix through the incoming router:
// walkthrough requests (each crossing all three hops), the same with a
// dtab override to world-v2, a service answering 500, and names that
// route nowhere.
func trafficMix(t *testing.T, w *walkthrough) {
	t.Helper()
	for range 5 {
		if code, body := w.get(t, "www.hello.world", nil); code != 200 || body != helloWorld {
			t.Fatalf("www.hello.world: %d %q", code, body)
		}
	}
	for range 2 {
		if code, body := w.get(t, "www.hello.world", map[string]string{"l5d-dtab": "/host/world => /srv/world-v2;"}); code != 200 || !strings.Contains(body, "earth") {
			t.Fatalf("with l5d-dtab: %d %q", code, body)
		}
	}
	for range 3 {
		if code, _ := w.get(t, "broken", nil); code != 500 {
			t.Fatalf("broken: %d, want 500", code)
		}
	}
	for range 2 {
		if code, _ := w.get(t, "nosuch", nil); code < 400 {
			t.Fatalf("nosuch: %d, want an error", code)
		}
	}
}

// normaliser replaces what changes from run to run (ports) with names.
func (w *walkthrough) normaliser() *strings.Replacer {
	return strings.NewReplacer(
		strconv.Itoa(w.Incoming), "INCOMING_PORT",
		strconv.Itoa(w.Outgoing), "OUTGOING_PORT",
	)
}

// volatileJSON are the metrics.json keys whose values depend on timing
// or on the Go runtime: their presence is checked, not their value.
var volatileJSON = regexp.MustCompile(`^process/|/request_latency_ms|/time/|/connections$|/connects$|/closes$|_bytes|/retries/budget$`)

func TestMetricsJSONGolden(t *testing.T) {
	t.Parallel()
	w := startWalkthrough(t, "")
	trafficMix(t, w)
	m := w.metrics(t)
	norm := w.normaliser()
	lines := make([]string, 0, len(m))
	for k, v := range m {
		val := strconv.FormatFloat(v, 'g', -1, 64)
		if volatileJSON.MatchString(k) {
			val = "<volatile>"
		}
		lines = append(lines, norm.Replace(k)+" "+val)
	}
	sort.Strings(lines)
	golden(t, "metrics_json.golden", strings.Join(lines, "\n")+"\n")
	// The volatile values are still checked for sense.
	for _, k := range []string{
		fmt.Sprintf("rt/incoming/server/127.0.0.1/%d/connects", w.Incoming),
		fmt.Sprintf("rt/outgoing/server/127.0.0.1/%d/connections", w.Outgoing),
		"rt/incoming/client/%/io.l5d.localhost/#/io.l5d.fs/hello/connections",
		fmt.Sprintf("rt/outgoing/client/%%/io.l5d.port/%d/#/io.l5d.fs/world-v1/connections", w.Incoming),
		"process/uptime_ms", "process/goroutines", "process/mem/heap_bytes",
	} {
		if v, ok := m[k]; !ok || v <= 0 {
			t.Errorf("%s = %v (present %v); want > 0", k, v, ok)
		}
	}
}

// promVolatile matches the Prometheus series whose values depend on
// timing (latency summaries, connection counts) and the Go runtime and
// process collectors.
var (
	promRuntime  = regexp.MustCompile(`^(# (HELP|TYPE) )?(go|process)_`)
	promVolatile = regexp.MustCompile(`^[^ {]*(request_latency_ms|:time|connections|connects|closes|_bytes|retries:budget\{|process:)`)
)

func TestPrometheusGolden(t *testing.T) {
	t.Parallel()
	w := startWalkthrough(t, "")
	trafficMix(t, w)
	out := w.adminGet(t, "/admin/metrics/prometheus")
	promtoolCheck(t, out)
	norm := w.normaliser()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if promRuntime.MatchString(l) {
			continue
		}
		if !strings.HasPrefix(l, "#") && promVolatile.MatchString(l) {
			if i := strings.LastIndexByte(l, ' '); i > 0 {
				l = l[:i] + " <volatile>"
			}
		}
		lines = append(lines, norm.Replace(l))
	}
	golden(t, "prometheus.golden", strings.Join(lines, "\n")+"\n")
	if !strings.Contains(out, "go_goroutines") || !strings.Contains(out, "process_resident_memory_bytes") {
		t.Errorf("runtime and process metrics missing from the Prometheus output")
	}
}

// promtoolCheck runs `promtool check metrics`. Lint findings are
// tolerated only where Linkerd's naming scheme requires them (':'
// separators, the _ms unit suffix), as in telemetry/prometheus.
func promtoolCheck(t *testing.T, out string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install the Debian package prometheus (scripts/test-deps.sh)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 3) {
		t.Fatalf("promtool check metrics: %v\n%s", err, stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && !strings.HasSuffix(line, "metric names should not contain ':'") &&
			!strings.HasSuffix(line, "metric names should not contain abbreviated units") {
			t.Errorf("promtool: %s", line)
		}
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got == string(want) {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	gs, ws := map[string]bool{}, map[string]bool{}
	for _, l := range gl {
		gs[l] = true
	}
	for _, l := range wl {
		ws[l] = true
	}
	var diff []string
	for _, l := range wl {
		if !gs[l] {
			diff = append(diff, "- "+l)
		}
	}
	for _, l := range gl {
		if !ws[l] {
			diff = append(diff, "+ "+l)
		}
	}
	t.Errorf("%s differs (-want +got; run with -update to accept):\n%s", path, strings.Join(diff, "\n"))
}

// Every metric the Grafana board (deploy/grafana) queries is produced by
// the real router after real traffic. The telemetry/prometheus test
// checks the board against a scripted registry; this one catches a
// metric the router never records. Latency summaries are the exception:
// histograms are summarised per one-minute interval (as in Linkerd), so
// they appear only after the first minute, longer than this test runs.
func TestGrafanaBoardMetricsExistAfterTraffic(t *testing.T) {
	t.Parallel()
	board, err := os.ReadFile("../../deploy/grafana/linnet-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	w := startWalkthrough(t, "")
	trafficMix(t, w)
	have := map[string]bool{}
	for _, l := range strings.Split(w.adminGet(t, "/admin/metrics/prometheus"), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		have[l[:strings.IndexAny(l, "{ ")]] = true
	}
	want := map[string]bool{}
	for _, m := range regexp.MustCompile(`\b(rt:[a-zA-Z0-9_:]+|go_[a-z0-9_]+|process_[a-z0-9_]+)`).FindAllString(string(board), -1) {
		want[m] = true
	}
	if len(want) < 10 {
		t.Fatalf("only %d metric names found in the board", len(want))
	}
	for m := range want {
		if strings.HasSuffix(m, "request_latency_ms") {
			continue
		}
		if !have[m] {
			t.Errorf("the board queries %s, which the router does not export after traffic", m)
		}
	}
}
