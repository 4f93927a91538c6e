package admin

import (
	"net/http"
	"regexp"
)

// Security is admin.security (spec/headers-admin.md §5.2): admin paths
// fall in three categories that can be turned off, with path white and
// black lists (regular expressions matched against the whole path).
type Security struct {
	UIEnabled, ControlEnabled, DiagnosticsEnabled bool
	whitelist, blacklist                          []*regexp.Regexp
}

// NewSecurity compiles the lists; each expression must match a whole path.
func NewSecurity(ui, control, diagnostics bool, whitelist, blacklist []string) (*Security, error) {
	s := &Security{UIEnabled: ui, ControlEnabled: control, DiagnosticsEnabled: diagnostics}
	for _, l := range []struct {
		in  []string
		out *[]*regexp.Regexp
	}{{whitelist, &s.whitelist}, {blacklist, &s.blacklist}} {
		for _, x := range l.in {
			re, err := regexp.Compile(`^(?:` + x + `)$`)
			if err != nil {
				return nil, err
			}
			*l.out = append(*l.out, re)
		}
	}
	return s, nil
}

var (
	uiPaths      = regexp.MustCompile(`^(?:/|/files/.*|/admin/files/.*|/config\.json|/metrics\.json|/admin/metrics\.json|/admin/metrics|/delegator|/delegator\.json|/logging|/help)$`)
	controlPaths = regexp.MustCompile(`^(?:/admin/shutdown|/logging\.json)$`)
)

// allows reports whether path may be served: a blacklisted path never is;
// otherwise it is when its category is enabled or it is whitelisted.
func (s *Security) allows(path string) bool {
	for _, re := range s.blacklist {
		if re.MatchString(path) {
			return false
		}
	}
	var enabled bool
	switch {
	case uiPaths.MatchString(path):
		enabled = s.UIEnabled
	case controlPaths.MatchString(path):
		enabled = s.ControlEnabled
	default:
		enabled = s.DiagnosticsEnabled
	}
	if enabled {
		return true
	}
	for _, re := range s.whitelist {
		if re.MatchString(path) {
			return true
		}
	}
	return false
}

func (s *Security) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.allows(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
