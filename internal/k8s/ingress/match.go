package ingress

import (
	"net"
	"regexp"
	"strings"

	kapi "github.com/linnet-mesh/linnet/internal/k8s"
)

// rule is one compiled (host, path) → backend rule.
type rule struct {
	ns       string
	host     string // "" matches any; "*.example.com" matches one label
	path     string
	pathType string
	re       *regexp.Regexp // ImplementationSpecific paths: full-match regexp
	bad      bool           // the path is an invalid regexp: never matches
	backend  kapi.IngressBackend
}

// snapshot is the compiled set of ingresses this identifier serves.
type snapshot struct {
	rules    []rule
	defaults []rule // default backends, tried after every rule
}

// ours reports whether an Ingress is meant for the controller of class.
func ours(i kapi.Ingress, class string) bool {
	if i.HasClassAnnotation {
		return i.ClassAnnotation == class
	}
	return i.ClassName == "" || i.ClassName == class
}

// compile builds the snapshot of ingresses (already in watch order).
// Invalid path expressions are reported through bad.
func compile(ings []kapi.Ingress, class string, ignoreDefaults bool, bad func(ing kapi.Ingress, path string, err error)) *snapshot {
	s := &snapshot{}
	for _, ing := range ings {
		if !ours(ing, class) {
			continue
		}
		ns := ing.Namespace
		if ns == "" {
			ns = "default"
		}
		for _, r := range ing.Rules {
			for _, p := range r.Paths {
				ru := rule{ns: ns, host: strings.ToLower(r.Host), path: p.Path, pathType: p.PathType, backend: p.Backend}
				if isRegexpPath(p) {
					re, err := regexp.Compile(`^(?:` + p.Path + `)$`)
					if err != nil {
						ru.bad = true
						if bad != nil {
							bad(ing, p.Path, err)
						}
					}
					ru.re = re
				}
				s.rules = append(s.rules, ru)
			}
		}
		if ing.DefaultBackend != nil && !ignoreDefaults {
			s.defaults = append(s.defaults, rule{ns: ns, backend: *ing.DefaultBackend})
		}
	}
	return s
}

// isRegexpPath: Linkerd 1 treats a rule path as a regular expression that
// must match the whole request path. networking/v1 keeps that meaning for
// ImplementationSpecific (and unset) path types; Exact and Prefix have
// their standard meanings.
func isRegexpPath(p kapi.IngressPath) bool {
	return p.Path != "" && p.PathType != "Exact" && p.PathType != "Prefix"
}

// requestHost is the Host header without a port, lower-cased.
func requestHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.ToLower(h)
}

func hostMatches(ruleHost, host string) bool {
	switch {
	case ruleHost == "":
		return true
	case strings.HasPrefix(ruleHost, "*."):
		// A wildcard covers exactly one DNS label.
		suffix := ruleHost[1:]
		if !strings.HasSuffix(host, suffix) {
			return false
		}
		label := host[:len(host)-len(suffix)]
		return label != "" && !strings.Contains(label, ".")
	}
	return ruleHost == host
}

func pathMatches(r *rule, path string) bool {
	if r.bad {
		return false
	}
	switch {
	case r.path == "":
		return true
	case r.pathType == "Exact":
		return path == r.path
	case r.pathType == "Prefix":
		return prefixMatches(r.path, path)
	}
	return r.re.MatchString(path)
}

// prefixMatches is networking/v1's Prefix rule: element-wise on
// "/"-separated segments, ignoring a trailing slash ("/foo" matches "/foo",
// "/foo/" and "/foo/bar", not "/foobar").
func prefixMatches(prefix, path string) bool {
	prefix = strings.TrimRight(prefix, "/")
	if prefix == "" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// match returns the backend for a request's host header and URL path.
func (s *snapshot) match(hostHeader, path string) (*rule, bool) {
	host := requestHost(hostHeader)
	if path == "" {
		path = "/"
	}
	for i := range s.rules {
		r := &s.rules[i]
		if hostMatches(r.host, host) && pathMatches(r, path) {
			return r, true
		}
	}
	if len(s.defaults) > 0 {
		return &s.defaults[0], true
	}
	return nil, false
}
