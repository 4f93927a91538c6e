package telemetry

// Label is one exporter label (Prometheus label, InfluxDB tag).
type Label struct{ Key, Value string }

// ScopeLabels turns the well-known scope positions of a metric's tree path
// into labels, as Linkerd's Prometheus and InfluxDB telemeters do:
//
//	rt/<router>/...                      → rt="<router>", segment removed
//	rt/{server|client|service}/<id>/...  → server|client|service="<id>", id removed
//	rt/client/service/<name>/...         → service="<name>", name removed
//
// It returns the remaining path segments and the labels in that order.
func ScopeLabels(path []string) (rest []string, labels []Label) {
	if len(path) < 2 || path[0] != "rt" {
		return path, nil
	}
	rest = append(rest, "rt")
	labels = append(labels, Label{"rt", path[1]})
	p := path[2:]
	if len(p) >= 2 && (p[0] == "server" || p[0] == "client" || p[0] == "service") {
		kind := p[0]
		rest = append(rest, kind)
		labels = append(labels, Label{kind, p[1]})
		p = p[2:]
		if kind == "client" && len(p) >= 2 && p[0] == "service" {
			rest = append(rest, "service")
			labels = append(labels, Label{"service", p[1]})
			p = p[2:]
		}
	}
	return append(rest, p...), labels
}
