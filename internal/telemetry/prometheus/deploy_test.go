package prometheus

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/telemetry/telemetrytest"
	"github.com/linnet-mesh/linnet/internal/testutil/freeport"
)

const (
	grafanaBoard     = "../../../deploy/grafana/linnet-dashboard.json"
	prometheusConfig = "../../../deploy/prometheus/prometheus.yml"
)

// boardQueries returns every PromQL expression of the Grafana board:
// panel targets (also inside collapsed rows) and template variable queries.
func boardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(grafanaBoard)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var board struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &board); err != nil {
		t.Fatalf("%s: %v", grafanaBoard, err)
	}
	var out []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q has a target without expr", p.Title)
				}
				out = append(out, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(board.Panels)
	for _, v := range board.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatal(err)
		}
		out = append(out, q.Query)
	}
	if len(out) < 20 {
		t.Fatalf("only %d queries found in the board", len(out))
	}
	return out
}

var (
	reGroupBy    = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	reRange      = regexp.MustCompile(`\[[^\]]*\]`)
	reSelector   = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}`)
	reMatcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"`)
	reIdent      = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	reLabelValue = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)[^,]*,\s*([a-zA-Z_]+)\s*\)`)
	keywords     = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true}
)

// metricRefs extracts the metric names of expr and the label names each
// selects on (or, for label_values, asks for).
func metricRefs(expr string) map[string][]string {
	refs := map[string][]string{}
	if m := reLabelValue.FindStringSubmatch(expr); m != nil {
		refs[m[1]] = append(refs[m[1]], m[2])
	}
	e := reGroupBy.ReplaceAllString(expr, " ")
	e = reRange.ReplaceAllString(e, " ")
	for _, m := range reSelector.FindAllStringSubmatch(e, -1) {
		if m[1] == "" {
			continue
		}
		for _, lm := range reMatcher.FindAllStringSubmatch(m[2], -1) {
			refs[m[1]] = append(refs[m[1]], lm[1])
		}
	}
	e = reSelector.ReplaceAllString(e, "$1 ")
	e = reLabelValue.ReplaceAllString(e, "$1")
	for _, loc := range reIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " ")
		if keywords[id] || strings.HasPrefix(rest, "(") {
			continue
		}
		if _, ok := refs[id]; !ok {
			refs[id] = nil
		}
	}
	return refs
}

func TestMetricRefs(t *testing.T) {
	got := metricRefs(`sum by (rt) (irate(rt:server:success{rt=~"$rt", quantile="0.99"}[1m])) / sum(irate(rt:server:requests[1m]))`)
	if len(got) != 2 || strings.Join(got["rt:server:success"], ",") != "rt,quantile" || got["rt:server:requests"] != nil {
		t.Fatalf("%v", got)
	}
	got = metricRefs(`label_values(rt:client:requests{rt=~"$rt"}, client)`)
	if len(got) != 1 || strings.Join(got["rt:client:requests"], ",") != "client,rt" {
		t.Fatalf("%v", got)
	}
}

// exported scrapes the exporter after the scripted traffic and returns its
// series names with the label names each carries.
func exported(t *testing.T) map[string]map[string]bool {
	reg := telemetry.NewRegistry()
	telemetrytest.Script(reg)
	out := scrape(t, Handler(reg, Options{Runtime: true}))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]map[string]bool{}
	add := func(n string, m *dto.Metric) {
		if names[n] == nil {
			names[n] = map[string]bool{}
		}
		for _, l := range m.GetLabel() {
			names[n][l.GetName()] = true
		}
	}
	for n, f := range fams {
		for _, m := range f.GetMetric() {
			add(n, m)
			if f.GetType() == dto.MetricType_SUMMARY || f.GetType() == dto.MetricType_HISTOGRAM {
				add(n+"_count", m)
				add(n+"_sum", m)
				names[n]["quantile"] = true
			}
		}
	}
	return names
}

// Every metric a Grafana query names is produced by the exporter, with the
// labels the query selects on (job and instance come from Prometheus).
func TestGrafanaBoardUsesExportedMetrics(t *testing.T) {
	have := exported(t)
	targetLabels := map[string]bool{"job": true, "instance": true}
	for _, q := range boardQueries(t) {
		refs := metricRefs(q)
		if len(refs) == 0 {
			t.Errorf("no metric found in %q", q)
		}
		for name, labels := range refs {
			ls, ok := have[name]
			if !ok {
				t.Errorf("query %q uses %s, which the exporter does not produce", q, name)
				continue
			}
			for _, l := range labels {
				if !ls[l] && !targetLabels[l] {
					t.Errorf("query %q selects %s on label %q, which it does not carry", q, name, l)
				}
			}
		}
	}
}

// TestGrafanaQueriesInRealPrometheus scrapes the exporter with a real
// Prometheus (Debian package prometheus) and runs every board query
// against it: each must return data.
func TestGrafanaQueriesInRealPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: install the Debian package prometheus (scripts/test-deps.sh)")
	}
	if out, err := exec.Command("promtool", "check", "config", prometheusConfig).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config %s: %v\n%s", prometheusConfig, err, out)
	}
	reg := telemetry.NewRegistry()
	telemetrytest.Script(reg)
	mux := http.NewServeMux()
	mux.Handle(DefaultPath, Handler(reg, Options{Runtime: true}))
	target := httptest.NewServer(mux)
	defer target.Close()
	// Keep the counters moving so that irate has something to say.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				telemetrytest.Script(reg)
			}
		}
	}()

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
- job_name: linnet
  metrics_path: %s
  static_configs: [{targets: [%q]}]
`, DefaultPath, strings.TrimPrefix(target.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+port, "--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	api := "http://127.0.0.1:" + port + "/api/v1/query?query="
	query := func(q string) (int, error) {
		resp, err := http.Get(api + url.QueryEscape(q))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Status != "success" {
			return 0, fmt.Errorf("HTTP %d: %s %s", resp.StatusCode, r.Error, b)
		}
		return len(r.Data.Result), nil
	}
	// Wait for three scrapes (irate needs two samples).
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := query(`count_over_time(up{job="linnet"}[1m]) >= 3`)
		if err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("prometheus did not scrape 3 times: %v\n%s", err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	vars := strings.NewReplacer(`"$rt"`, `".*"`, `"$service"`, `".*"`, `"$client"`, `".*"`, `"$job"`, `".*"`)
	var pending []string
	for _, q := range boardQueries(t) {
		if strings.HasPrefix(q, "label_values(") {
			continue // a Grafana function, covered by TestGrafanaBoardUsesExportedMetrics
		}
		pending = append(pending, vars.Replace(q))
	}
	// A query over a rate window can come back empty while a scrape is
	// late (a loaded machine); ask again for a bounded time before failing.
	var failed []string
	retryUntil := time.Now().Add(20 * time.Second)
	for {
		failed = failed[:0]
		var still []string
		for _, pq := range pending {
			n, err := query(pq)
			if err != nil || n == 0 {
				still = append(still, pq)
				failed = append(failed, fmt.Sprintf("%s → %d series, %v", pq, n, err))
			}
		}
		pending = still
		if len(pending) == 0 || time.Now().After(retryUntil) {
			break
		}
		time.Sleep(time.Second)
	}
	sort.Strings(failed)
	for _, f := range failed {
		t.Error(f)
	}
}

func freePort(t *testing.T) string {
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(p)
}
