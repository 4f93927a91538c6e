package prometheus

import (
	"strings"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// series is one exported name with its labels, before the value.
type series struct {
	name   string
	labels []label
}

type label struct{ k, v string }

// convert turns a metric's tree path into a Prometheus name and labels
// (spec headers-admin.md §6.3, Linkerd's PrometheusTelemeter):
//
//	rt/<router>/...                        → label rt, segment removed
//	rt/{server|client|service}/<id>/...    → label server|client|service
//	rt/client/service/<name>/...           → label service
//	.../failures/<exc...>                  → name ...:failures, label exception (nested joined with ':')
//	.../exn/<exc...>                       → name ...:exceptions, label exception
//
// The remaining segments are joined with ':', prefix prepended, and every
// character outside [a-zA-Z0-9:] replaced by '_'.
func convert(prefix string, path []string) series {
	var s series
	rest, labels := telemetry.ScopeLabels(path)
	for _, l := range labels {
		s.labels = append(s.labels, label{l.Key, l.Value})
	}
	kept := make([]string, 0, len(rest))
	for i, e := range rest {
		if (e == "failures" || e == "exn") && i+1 < len(rest) {
			name := "failures"
			if e == "exn" {
				name = "exceptions"
			}
			kept = append(kept, name)
			s.labels = append(s.labels, label{"exception", strings.Join(rest[i+1:], ":")})
			break
		}
		kept = append(kept, e)
	}
	s.name = sanitize(prefix + strings.Join(kept, ":"))
	return s
}

// sanitize maps every character outside [a-zA-Z0-9:] to '_' and makes
// sure the name does not start with a digit (which Prometheus refuses).
func sanitize(n string) string {
	b := []byte(n)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':') {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}
