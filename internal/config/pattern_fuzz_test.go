package config

import (
	"strings"
	"testing"
)

// FuzzPathPattern: any io.l5d.rewrite pattern either fails with an error
// quoting it, or compiles; a compiled pattern matches the path made of
// its own literal segments (captures and * filled with "x"), and what it
// captures expands back into the pattern text.
func FuzzPathPattern(f *testing.F) {
	for _, s := range []string{"/", "/svc/{service}", "/{a}-{b}/*/lit", "/x{a}y/{b}", "svc", "//", "/{a}/{a}",
		"/{}", "/{a", "/a}", "/{a}{b}", "/{a.b}/{c-d}", "/{a/b}", "/*/*", "/a//b", "/{\x00}", "/*{0}"} {
		f.Add(s, "/a/b/c")
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		p, err := ParsePathPattern(pattern)
		if err != nil {
			if !strings.Contains(err.Error(), "pattern ") {
				t.Fatalf("ParsePathPattern(%q) error %q does not name the pattern", pattern, err)
			}
			return
		}
		if p.String() != pattern {
			t.Fatalf("String() = %q, want %q", p.String(), pattern)
		}
		// Any path: Match never panics and captures only declared names.
		segs := strings.Split(strings.Trim(path, "/"), "/")
		if vars, ok := p.Match(segs); ok {
			for name := range vars {
				if !contains(p.Vars(), name) {
					t.Fatalf("%q matched %q capturing undeclared %q", pattern, path, name)
				}
			}
		}
		// The pattern's own instance matches, and expanding its captures
		// into the pattern gives the instance back.
		var inst, tmpl []string
		if pattern != "/" {
			for _, seg := range strings.Split(strings.Trim(pattern, "/"), "/") {
				if seg == "*" {
					inst, tmpl = append(inst, "x"), append(tmpl, "x")
					continue
				}
				inst, tmpl = append(inst, captureRE.ReplaceAllString(seg, "x")), append(tmpl, seg)
			}
		}
		if len(inst) != p.Len() {
			t.Fatalf("%q: Len() = %d, want %d", pattern, p.Len(), len(inst))
		}
		vars, ok := p.Match(inst)
		if !ok {
			t.Fatalf("%q does not match its own instance %q", pattern, inst)
		}
		if len(vars) != len(p.Vars()) {
			t.Fatalf("%q matching %q captured %v, want all of %v", pattern, inst, vars, p.Vars())
		}
		out, err := Expand(strings.Join(tmpl, "/"), vars)
		if err != nil {
			t.Fatalf("Expand(%q, %v): %v", tmpl, vars, err)
		}
		if want := strings.Join(inst, "/"); out != want {
			t.Fatalf("Expand(%q, %v) = %q, want %q", tmpl, vars, out, want)
		}
	})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
