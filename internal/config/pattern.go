package config

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// PathPattern is a path template as Linkerd's static client/service configs
// and the io.l5d.rewrite namer use it: "/$/inet/{host}/*/x{n}y". Each
// segment is a literal, "*" (any one segment), or text containing {var}
// captures, each of which matches any run of characters within the segment
// (greedily). A pattern matches a path when it matches the path's leading
// segments. As a config field it decodes from a string and is checked when
// loaded.
type PathPattern struct {
	text string
	segs []patternSeg
	vars []string
}

type patternSeg struct {
	any     bool
	literal string         // when no capture
	re      *regexp.Regexp // when the segment has captures
	names   []string
}

var captureRE = regexp.MustCompile(`\{([^{}/]*)\}`)

// ParsePathPattern parses a pattern. It must start with '/'; captures must
// be named with letters, digits, '_' or '-', and each name used once.
func ParsePathPattern(s string) (PathPattern, error) {
	p := PathPattern{text: s}
	if !strings.HasPrefix(s, "/") {
		return p, fmt.Errorf("pattern %q must start with '/'", s)
	}
	if !utf8.ValidString(s) { // its segments become regexps, which must be UTF-8
		return p, fmt.Errorf("pattern %q is not valid UTF-8", s)
	}
	seen := map[string]bool{}
	for _, seg := range strings.Split(strings.Trim(s, "/"), "/") {
		if seg == "" {
			if s == "/" {
				break
			}
			return p, fmt.Errorf("pattern %q has an empty segment", s)
		}
		if seg == "*" {
			p.segs = append(p.segs, patternSeg{any: true})
			continue
		}
		locs := captureRE.FindAllStringSubmatchIndex(seg, -1)
		if len(locs) == 0 {
			if strings.ContainsAny(seg, "{}") {
				return p, fmt.Errorf("pattern %q: unbalanced brace in segment %q", s, seg)
			}
			p.segs = append(p.segs, patternSeg{literal: seg})
			continue
		}
		var re strings.Builder
		re.WriteString("^")
		var names []string
		last := 0
		for _, l := range locs {
			lit := seg[last:l[0]]
			if strings.ContainsAny(lit, "{}") {
				return p, fmt.Errorf("pattern %q: unbalanced brace in segment %q", s, seg)
			}
			re.WriteString(regexp.QuoteMeta(lit))
			name := seg[l[2]:l[3]]
			if !validVar(name) {
				return p, fmt.Errorf("pattern %q: invalid capture name {%s}", s, name)
			}
			if seen[name] {
				return p, fmt.Errorf("pattern %q: capture {%s} used twice", s, name)
			}
			seen[name] = true
			names = append(names, name)
			re.WriteString("(.*)")
			last = l[1]
		}
		if strings.ContainsAny(seg[last:], "{}") {
			return p, fmt.Errorf("pattern %q: unbalanced brace in segment %q", s, seg)
		}
		re.WriteString(regexp.QuoteMeta(seg[last:]))
		re.WriteString("$")
		p.segs = append(p.segs, patternSeg{re: regexp.MustCompile(re.String()), names: names})
		p.vars = append(p.vars, names...)
	}
	return p, nil
}

func validVar(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// String returns the pattern text.
func (p PathPattern) String() string { return p.text }

// IsZero reports whether the pattern is unset.
func (p PathPattern) IsZero() bool { return p.text == "" }

// Len returns the number of segments the pattern matches.
func (p PathPattern) Len() int { return len(p.segs) }

// Vars returns the capture names, in order.
func (p PathPattern) Vars() []string { return append([]string(nil), p.vars...) }

// Match matches the pattern against the leading segments of path and
// returns the captured variables (an empty, non-nil map when there are
// none).
func (p PathPattern) Match(path []string) (map[string]string, bool) {
	if len(path) < len(p.segs) {
		return nil, false
	}
	vars := make(map[string]string, len(p.vars))
	for i, s := range p.segs {
		switch {
		case s.any:
		case s.re == nil:
			if path[i] != s.literal {
				return nil, false
			}
		default:
			m := s.re.FindStringSubmatch(path[i])
			if m == nil {
				return nil, false
			}
			for j, name := range s.names {
				vars[name] = m[j+1]
			}
		}
	}
	return vars, true
}

// Expand substitutes {var} references in template with vars. A reference
// to a variable not in vars is an error.
func Expand(template string, vars map[string]string) (string, error) {
	var err error
	out := captureRE.ReplaceAllStringFunc(template, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := vars[name]
		if !ok && err == nil {
			err = fmt.Errorf("%q refers to {%s}, which the pattern does not capture", template, name)
		}
		return v
	})
	return out, err
}

// TemplateVars returns the {var} names referenced by template.
func TemplateVars(template string) []string {
	var out []string
	for _, m := range captureRE.FindAllStringSubmatch(template, -1) {
		out = append(out, m[1])
	}
	return out
}

// UnmarshalConfig implements Unmarshaler: a pattern is a string.
func (p *PathPattern) UnmarshalConfig(r Raw) error {
	if r.IsZero() {
		*p = PathPattern{}
		return nil
	}
	s, ok := r.Scalar()
	if !ok {
		return r.Errorf("expected a path pattern string, got %s", r.n.describe())
	}
	pp, err := ParsePathPattern(s)
	if err != nil {
		return r.Errorf("%v", err)
	}
	*p = pp
	return nil
}

// ApplyDefaults prepares *ptr as the decoder prepares a fresh value: the
// SetDefaults of its struct fields, then its own.
func ApplyDefaults(ptr any) {
	v := reflectValueOf(ptr)
	if v.IsValid() {
		setDefaults(v)
	}
}
