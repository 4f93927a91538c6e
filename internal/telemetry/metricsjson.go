package telemetry

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strings"
)

// statFields are the keys a histogram X exports as X.<field> (flat) or
// stat.<field> (tree), in Linkerd's order.
var statFields = []string{"count", "max", "min", "p50", "p90", "p95", "p99", "p9990", "p9999", "sum", "avg"}

func statValues(sn *Snapshot) []any {
	return []any{sn.Count, sn.Max, sn.Min, sn.P50, sn.P90, sn.P95, sn.P99, sn.P9990, sn.P9999, sn.Sum, sn.Avg}
}

// Flat returns the registry as Linkerd's flat metrics.json object: key =
// flat metric name, counters and gauges by name, a histogram X as X.count
// and, when it saw values in the last interval, X.max, X.min, X.p50, X.p90,
// X.p95, X.p99, X.p9990, X.p9999, X.sum and X.avg. Histograms before their
// first interval ends are absent.
func Flat(r *Registry) map[string]any {
	out := map[string]any{}
	r.Each(func(m Metric) {
		switch m.Kind {
		case KindCounter:
			out[m.Name] = m.Counter.Value()
		case KindGauge:
			out[m.Name] = gaugeValue(m.Gauge)
		case KindStat:
			if m.Snapshot == nil {
				return
			}
			vals := statValues(m.Snapshot)
			n := len(vals)
			if m.Snapshot.Count == 0 {
				n = 1
			}
			for i := range n {
				out[m.Name+"."+statFields[i]] = vals[i]
			}
		}
	})
	return out
}

// Tree returns the registry as nested objects following the scope tree; a
// node's own value is stored under "counter", "gauge" or "stat.<field>".
func Tree(r *Registry) map[string]any {
	root := map[string]any{}
	r.Each(func(m Metric) {
		if m.Kind == KindStat && m.Snapshot == nil {
			return
		}
		path := m.Path
		if len(path) == 0 {
			path = SplitName(m.Name)
		}
		node := root
		for _, e := range path {
			child, ok := node[e].(map[string]any)
			if !ok {
				child = map[string]any{}
				node[e] = child
			}
			node = child
		}
		switch m.Kind {
		case KindCounter:
			node["counter"] = m.Counter.Value()
		case KindGauge:
			node["gauge"] = gaugeValue(m.Gauge)
		case KindStat:
			vals := statValues(m.Snapshot)
			n := len(vals)
			if m.Snapshot.Count == 0 {
				n = 1
			}
			for i := range n {
				node["stat."+statFields[i]] = vals[i]
			}
		}
	})
	return root
}

// Subtree returns the node of tree at the scope path q ("rt/outgoing" or
// "rt/outgoing/client/$/inet/127.1/8888"). Because one node may contain
// '/', each step takes the longest run of q's segments that names a child.
func Subtree(tree map[string]any, q string) (map[string]any, bool) {
	segs := strings.Split(strings.Trim(q, "/"), "/")
	node := tree
	for len(segs) > 0 {
		found := false
		for n := len(segs); n > 0; n-- {
			if child, ok := node[strings.Join(segs[:n], "/")].(map[string]any); ok {
				node, segs, found = child, segs[n:], true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return node, true
}

func gaugeValue(f func() float64) float64 {
	v := f()
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0 // JSON has no NaN; Linkerd reports such gauges as 0 too
	}
	return v
}

// MetricsJSONHandler serves /admin/metrics.json (spec headers-admin.md
// §6.2): the flat object by default, the scope tree with tree=1, only the
// subtree at q=<scope path> (404 when unknown), sorted and indented with
// pretty=true.
func MetricsJSONHandler(r *Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		qv := req.URL.Query()
		var body any
		q := qv.Get("q")
		if isTrue(qv.Get("tree")) || q != "" {
			tree := Tree(r)
			if q != "" {
				sub, ok := Subtree(tree, q)
				if !ok {
					writeJSON(w, http.StatusNotFound, map[string]string{"error": "No such subtree: " + q}, false)
					return
				}
				if !isTrue(qv.Get("tree")) {
					body = flatten(sub, strings.Trim(q, "/"))
				} else {
					body = sub
				}
			} else {
				body = tree
			}
		} else {
			body = Flat(r)
		}
		writeJSON(w, http.StatusOK, body, isTrue(qv.Get("pretty")))
	})
}

// flatten turns a subtree back into flat keys under prefix.
func flatten(node map[string]any, prefix string) map[string]any {
	out := map[string]any{}
	var walk func(n map[string]any, name string)
	walk = func(n map[string]any, name string) {
		for k, v := range n {
			if child, ok := v.(map[string]any); ok {
				walk(child, name+"/"+k)
				continue
			}
			switch {
			case k == "counter" || k == "gauge":
				out[name] = v
			case strings.HasPrefix(k, "stat."):
				out[name+"."+strings.TrimPrefix(k, "stat.")] = v
			}
		}
	}
	walk(node, prefix)
	return out
}

func isTrue(s string) bool { return s == "1" || strings.EqualFold(s, "true") }

func writeJSON(w http.ResponseWriter, code int, v any, pretty bool) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if pretty {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
