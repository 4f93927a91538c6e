// Package influxdb is the io.l5d.influxdb telemeter: it serves the metrics
// tree at /admin/metrics/influxdb in the InfluxDB line protocol, for an
// agent such as Telegraf to poll, with Linkerd 1's layout:
//
//	rt:server,host=none,rt=incoming,server=127.0.0.1/4141 requests=1,success=1
//
// Metrics that share a parent scope become the fields of one line; the
// parent's path (with rt, server, client and service positions turned
// into tags, as for Prometheus) joined with ':' is the measurement, "root"
// for top-level metrics. A histogram X contributes X_count, X_sum, X_avg,
// X_min, X_max, X_p50, X_p90, X_p95, X_p99, X_p999 and X_p9999 from its
// last interval, and nothing before the first one. The host tag is the
// Host header of the scrape request.
package influxdb

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Kind is the telemeter kind this package registers.
const Kind = "io.l5d.influxdb"

// Path is where the metrics are served on the admin server.
const Path = "/admin/metrics/influxdb"

func init() {
	config.Register[telemetry.TelemeterConfig](Kind, func() telemetry.TelemeterConfig { return &Config{} })
}

// Config is the io.l5d.influxdb telemeter; it has no keys of its own.
type Config struct {
	telemetry.TelemeterCommon `yaml:",inline"`
}

// NewTelemeter implements telemetry.TelemeterConfig.
func (c *Config) NewTelemeter(env telemetry.TelemeterEnv) (telemetry.Telemeter, error) {
	return telemeter{reg: env.Registry}, nil
}

type telemeter struct{ reg *telemetry.Registry }

func (t telemeter) AdminHandlers() []telemetry.AdminHandler {
	return []telemetry.AdminHandler{{Path: Path, Handler: Handler(t.reg)}}
}

func (telemeter) Close() error { return nil }

// Handler serves reg in the line protocol.
func Handler(reg *telemetry.Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if host == "" {
			host = "none"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(Lines(reg, host))
	})
}

// line is one measurement with its tags and fields.
type line struct {
	measurement string
	tags        []telemetry.Label
	fields      []field
}

type field struct{ key, value string }

// Lines renders reg, tagging every line with host.
func Lines(reg *telemetry.Registry, host string) []byte {
	byKey := map[string]*line{}
	var order []string
	add := func(parent []string, f ...field) {
		rest, labels := telemetry.ScopeLabels(parent)
		m := "root"
		if len(rest) > 0 {
			m = escapeMeasurement(strings.Join(rest, ":"))
		}
		tags := append([]telemetry.Label{{Key: "host", Value: host}}, labels...)
		sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
		var k strings.Builder
		k.WriteString(m)
		for _, t := range tags {
			k.WriteString("\x00" + t.Key + "\x00" + t.Value)
		}
		l := byKey[k.String()]
		if l == nil {
			l = &line{measurement: m, tags: tags}
			byKey[k.String()] = l
			order = append(order, k.String())
		}
		l.fields = append(l.fields, f...)
	}
	reg.Each(func(m telemetry.Metric) {
		path := m.Path
		if len(path) == 0 {
			path = telemetry.SplitName(m.Name)
		}
		parent, name := path[:len(path)-1], path[len(path)-1]
		switch m.Kind {
		case telemetry.KindCounter:
			add(parent, field{name, strconv.FormatInt(m.Counter.Value(), 10)})
		case telemetry.KindGauge:
			add(parent, field{name, formatFloat(m.Gauge())})
		case telemetry.KindStat:
			sn := m.Snapshot
			if sn == nil {
				return
			}
			i := func(v int64) string { return strconv.FormatInt(v, 10) }
			add(parent,
				field{name + "_count", i(sn.Count)}, field{name + "_sum", i(sn.Sum)},
				field{name + "_avg", formatFloat(sn.Avg)}, field{name + "_min", i(sn.Min)},
				field{name + "_max", i(sn.Max)}, field{name + "_p50", i(sn.P50)},
				field{name + "_p90", i(sn.P90)}, field{name + "_p95", i(sn.P95)},
				field{name + "_p99", i(sn.P99)}, field{name + "_p999", i(sn.P9990)},
				field{name + "_p9999", i(sn.P9999)})
		}
	})
	sort.Strings(order)
	var b strings.Builder
	for _, k := range order {
		l := byKey[k]
		sort.SliceStable(l.fields, func(i, j int) bool { return l.fields[i].key < l.fields[j].key })
		b.WriteString(l.measurement)
		for _, t := range l.tags {
			b.WriteString("," + escapeKey(t.Key) + "=" + escapeKey(t.Value))
		}
		for i, f := range l.fields {
			if i == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteByte(',')
			}
			b.WriteString(escapeKey(f.key) + "=" + f.value)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// formatFloat prints a float the way Linkerd (the JVM) does: always with a
// fraction ("1.0"), so InfluxDB stores gauges as floats.
func formatFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

// escapeMeasurement applies Linkerd's rule for measurement names: every
// character outside [a-zA-Z0-9:] becomes '_'.
func escapeMeasurement(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':') {
			b[i] = '_'
		}
	}
	return string(b)
}

// escapeKey escapes commas, spaces and equals signs in tag keys, tag
// values and field keys (line protocol), which Linkerd left raw.
var keyEscaper = strings.NewReplacer(",", `\,`, " ", `\ `, "=", `\=`, "\n", `\n`)

func escapeKey(s string) string { return keyEscaper.Replace(s) }

var _ telemetry.Telemeter = telemeter{}
