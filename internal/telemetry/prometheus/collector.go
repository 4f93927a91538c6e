// Package prometheus is the io.l5d.prometheus telemeter: it exports the
// telemetry registry in the Prometheus text format at
// /admin/metrics/prometheus, with Linkerd's names and labels (spec
// headers-admin.md §6.3) so that linkerd-viz style dashboards keep working.
//
// The exporter is a client_golang Collector over the registry (Collector),
// so it can also be registered into any prometheus.Registerer next to
// other collectors. Differences from Linkerd 1's hand-written output, none
// of which changes what a scraper stores: the text carries # HELP and
// # TYPE lines, label pairs have no space after the comma, and gauges
// print as "1" rather than "1.0".
package prometheus

import (
	"net/http"
	"strings"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// quantiles are the exported summary quantiles; 0 is the minimum and 1 the
// maximum, as in Linkerd.
var quantiles = []float64{0, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1}

// Collector exports a telemetry.Registry as Prometheus metrics. It is an
// unchecked collector (its Describe sends nothing): the set of metrics
// changes as routers see new names.
type Collector struct {
	reg    *telemetry.Registry
	prefix string
}

// NewCollector returns a Collector for reg whose metric names start with
// prefix (the telemeter's `prefix`, e.g. "linkerd_"; may be empty).
func NewCollector(reg *telemetry.Registry, prefix string) *Collector {
	return &Collector{reg: reg, prefix: prefix}
}

// Describe implements prometheus.Collector (unchecked: sends nothing).
func (c *Collector) Describe(chan<- *prom.Desc) {}

// Collect implements prometheus.Collector. Counters and gauges are live;
// a histogram X is exported from its last interval summary as a summary
// (X{quantile=...}, X_count, X_sum) plus a gauge X_avg, and left out when
// that interval saw no values.
func (c *Collector) Collect(ch chan<- prom.Metric) {
	c.reg.Each(func(m telemetry.Metric) {
		path := m.Path
		if len(path) == 0 {
			path = telemetry.SplitName(m.Name)
		}
		s := convert(c.prefix, path)
		names := make([]string, len(s.labels))
		values := make([]string, len(s.labels))
		for i, l := range s.labels {
			// Label values must be UTF-8; a scope id is whatever the
			// router saw, so repair rather than drop the series.
			names[i], values[i] = l.k, strings.ToValidUTF8(l.v, "\uFFFD")
		}
		switch m.Kind {
		case telemetry.KindCounter:
			d := prom.NewDesc(s.name, "Linkerd counter.", names, nil)
			ch <- prom.MustNewConstMetric(d, prom.UntypedValue, float64(m.Counter.Value()), values...)
		case telemetry.KindGauge:
			d := prom.NewDesc(s.name, "Linkerd gauge.", names, nil)
			ch <- prom.MustNewConstMetric(d, prom.GaugeValue, m.Gauge(), values...)
		case telemetry.KindStat:
			sn := m.Snapshot
			if sn == nil || sn.Count == 0 {
				return
			}
			qv := []int64{sn.Min, sn.P50, sn.P90, sn.P95, sn.P99, sn.P9990, sn.P9999, sn.Max}
			qs := make(map[float64]float64, len(quantiles))
			for i, q := range quantiles {
				qs[q] = float64(qv[i])
			}
			d := prom.NewDesc(s.name, "Linkerd histogram, last interval.", names, nil)
			ch <- prom.MustNewConstSummary(d, uint64(sn.Count), float64(sn.Sum), qs, values...)
			avg := prom.NewDesc(s.name+"_avg", "Linkerd histogram mean, last interval.", names, nil)
			ch <- prom.MustNewConstMetric(avg, prom.GaugeValue, sn.Avg, values...)
		}
	})
}

// Options configure Handler.
type Options struct {
	// Prefix is prepended to every metric name from the registry.
	Prefix string
	// Runtime adds the Go runtime and process collectors (go_*, process_*),
	// the Go equivalents of Linkerd's jvm/* metrics.
	Runtime bool
}

// Handler serves reg in the Prometheus exposition format (text by default,
// or whatever the scraper negotiates).
func Handler(reg *telemetry.Registry, opts Options) http.Handler {
	pr := prom.NewPedanticRegistry()
	pr.MustRegister(NewCollector(reg, opts.Prefix))
	if opts.Runtime {
		pr.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return promhttp.HandlerFor(pr, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

var _ prom.Collector = (*Collector)(nil)
