package ingress

import (
	"regexp"
	"strings"
	"testing"

	kapi "github.com/linnet-mesh/linnet/internal/k8s"
)

// FuzzMatch compiles one ingress rule from arbitrary host, path and path
// type and matches an arbitrary Host header and request path against it:
// no panic, and a match happens exactly when the host and path rules of
// networking/v1 say so (checked against a model written independently).
func FuzzMatch(f *testing.F) {
	f.Add("www.hello.world", "/testpath", "", "www.hello.world:80", "/testpath/x")
	f.Add("*.wild.world", "", "", "a.wild.world", "/")
	f.Add("*.wild.world", "", "", "a.b.wild.world", "/")
	f.Add("", "/v[0-9]+/.*", "ImplementationSpecific", "[::1]:4140", "/v2/x")
	f.Add("API.example", "/pre/", "Prefix", "api.EXAMPLE", "/pre")
	f.Add("h", "/pre", "Prefix", "h", "/prefix")
	f.Add("h", "/exact", "Exact", "H:1", "/exact/")
	f.Add("h", "/bad(", "", "h", "/bad(")
	f.Add("*.", "/", "Prefix", ".", "")
	f.Fuzz(func(t *testing.T, ruleHost, rulePath, pathType, hostHeader, path string) {
		ing := kapi.Ingress{Name: "fuzz", Rules: []kapi.IngressRule{{Host: ruleHost,
			Paths: []kapi.IngressPath{{Path: rulePath, PathType: pathType, Backend: be("svc", "80")}}}}}
		var invalid bool
		s := compile([]kapi.Ingress{ing}, "linkerd", false, func(kapi.Ingress, string, error) { invalid = true })
		r, ok := s.match(hostHeader, path)
		if ok && (r == nil || r.backend.Service != "svc") {
			t.Fatalf("matched %+v", r)
		}
		want := modelHost(strings.ToLower(ruleHost), modelRequestHost(hostHeader)) &&
			modelPath(rulePath, pathType, path, invalid)
		if ok != want {
			t.Fatalf("rule host %q path %q (%s) vs Host %q path %q: matched %v, want %v",
				ruleHost, rulePath, pathType, hostHeader, path, ok, want)
		}
	})
}

func modelRequestHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.LastIndex(h, "]"); i > 0 && (i == len(h)-1 || h[i+1] == ':' && !strings.Contains(h[i+2:], ":")) {
			if i == len(h)-1 || !strings.ContainsAny(h[1:i], "[]") {
				return strings.ToLower(h[1:i])
			}
		}
		return strings.ToLower(h)
	}
	if strings.Count(h, ":") == 1 && !strings.ContainsAny(h, "[]") {
		h = h[:strings.IndexByte(h, ':')]
	}
	return strings.ToLower(h)
}

func modelHost(rule, host string) bool {
	if rule == "" {
		return true
	}
	if rest, ok := strings.CutPrefix(rule, "*."); ok {
		label, found := strings.CutSuffix(host, "."+rest)
		return found && label != "" && !strings.Contains(label, ".")
	}
	return rule == host
}

func modelPath(rule, pathType, path string, invalid bool) bool {
	if path == "" {
		path = "/"
	}
	switch {
	case rule == "":
		return true
	case pathType == "Exact":
		return rule == path
	case pathType == "Prefix":
		want := strings.Split(strings.TrimRight(rule, "/"), "/")
		got := strings.Split(path, "/")
		if len(want) == 1 && want[0] == "" {
			return true
		}
		if len(got) < len(want) {
			return false
		}
		for i := range want {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}
	re, err := regexp.Compile(`^(?:` + rule + `)$`)
	if err != nil {
		if !invalid {
			panic("invalid regexp not reported")
		}
		return false
	}
	return re.MatchString(path)
}
