package dtab

import "testing"

func TestPathHelpers(t *testing.T) {
	a := p("a", "b", "c")
	if !a.Equal(p("a", "b", "c")) || a.Equal(p("a", "b")) || a.Equal(p("a", "b", "C")) {
		t.Error("Equal")
	}
	if !Path(nil).Equal(Path{}) {
		t.Error("nil and empty paths differ")
	}
	for _, tt := range []struct {
		q    Path
		want bool
	}{
		{nil, true}, {p("a"), true}, {p("a", "b", "c"), true},
		{p("a", "c"), false}, {p("a", "b", "c", "d"), false}, {p("ab"), false},
	} {
		if got := a.HasPrefix(tt.q); got != tt.want {
			t.Errorf("HasPrefix(%q) = %v, want %v", []string(tt.q), got, tt.want)
		}
	}
	if got := p("svcx").HasPrefix(p("svc")); got {
		t.Error("HasPrefix matched characters, not elements")
	}

	c := a.Take(1).Concat(p("x"))
	if !c.Equal(p("a", "x")) {
		t.Errorf("Concat = %q", []string(c))
	}
	if a[1] != "b" {
		t.Error("Concat wrote into its receiver's storage")
	}
	c[0] = "changed"
	if a[0] != "a" {
		t.Error("Concat result aliases its receiver")
	}
	if got := Path(nil).Concat(nil); got != nil {
		t.Errorf("empty Concat = %q, want nil", []string(got))
	}

	for _, tt := range []struct {
		n          int
		take, drop Path
	}{
		{-1, nil, a}, {0, nil, a}, {1, p("a"), p("b", "c")}, {3, a, nil}, {9, a, nil},
	} {
		if got := a.Take(tt.n); !got.Equal(tt.take) {
			t.Errorf("Take(%d) = %q", tt.n, []string(got))
		}
		if got := a.Drop(tt.n); !got.Equal(tt.drop) {
			t.Errorf("Drop(%d) = %q", tt.n, []string(got))
		}
	}
	_ = append(a.Take(1), "Z")
	if a[1] != "b" {
		t.Error("append to Take clobbered the original")
	}
}

func TestPrefixMatch(t *testing.T) {
	tests := []struct {
		prefix, path string
		rest         string // "" = no match
	}{
		{"/", "/", "/"},
		{"/", "/a/b", "/a/b"},
		{"/", "/#/io.l5d.fs/x", "/#/io.l5d.fs/x"},
		{"/", "/$/inet/1/2", "/$/inet/1/2"},
		{"/svc", "/svc", "/"},
		{"/svc", "/svc/x/y", "/x/y"},
		{"/sv", "/svc/x", ""}, // per element, never per character
		{"/svc/x", "/svc", ""},
		{"/*", "/anything/else", "/else"}, // the wildcard element is consumed
		{"/*", "/", ""},
		{"/x/*/y", "/x/1/y/z", "/z"},
		{"/x/*/y", "/x/1/q/z", ""},
		{`/\x2a`, "/a", ""}, // a literal '*' label is not a wildcard
		{`/\x2a`, `/\x2a/b`, "/b"},
	}
	for _, tt := range tests {
		x := mustPrefix(t, tt.prefix)
		rest, ok := x.Match(MustParsePath(tt.path))
		if ok != (tt.rest != "") {
			t.Errorf("%s matches %s = %v, want %v", tt.prefix, tt.path, ok, !ok)
			continue
		}
		if ok && rest.String() != tt.rest {
			t.Errorf("%s on %s: rest %s, want %s", tt.prefix, tt.path, rest, tt.rest)
		}
	}
	path := MustParsePath("/a/b/c")
	rest, _ := mustPrefix(t, "/a").Match(path)
	_ = append(rest, "X")
	if path.String() != "/a/b/c" {
		t.Errorf("append to Match rest clobbered the path: %s", path)
	}
	if got := PrefixOf(p("a", "*")).String(); got != `/a/\x2a` {
		t.Errorf("PrefixOf = %s", got)
	}
	if PrefixOf(nil) != nil {
		t.Error("PrefixOf(empty) not nil")
	}
}

func mustPrefix(t *testing.T, s string) Prefix {
	t.Helper()
	x, err := ParsePrefix(s)
	if err != nil {
		t.Fatalf("ParsePrefix(%q): %v", s, err)
	}
	return x
}

func TestLookup(t *testing.T) {
	tests := []struct {
		dtab, path, want string
	}{
		{"", "/a", "~"},
		{"/x => /y", "/a", "~"},
		{"/svc => /#/io.l5d.fs", "/svc/world", "/#/io.l5d.fs/world"},
		{"/svc => /#/io.l5d.fs", "/svc", "/#/io.l5d.fs"},
		// Later dentries first; specificity is irrelevant.
		{"/svc/world => /x; /svc => /y", "/svc/world", "/y/world | /x"},
		{"/svc => /y; /svc/world => /x", "/svc/world", "/x | /y/world"},
		// The rest goes onto every leaf; structure, weights, constants kept.
		{"/s => 2 * /a & (/b | !) & $ & ~", "/s/r/t", "2.00*/a/r/t & (/b/r/t | !) & $ & ~"},
		{"/s => /a | ~; /s => /x", "/s/r", "/x/r | (/a/r | ~)"},
		{"/ => /a", "/", "/a"},
		{"/ => /a", "/#/io.l5d.fs/x", "/a/#/io.l5d.fs/x"},
		{"/* => /a", "/b/c", "/a/c"},
		{"/x/*/y => /z", "/x/1/y/w", "/z/w"},
		{"/sv => /a", "/svc/x", "~"},
		{"/a => /b; /a => /c; /a => /d", "/a", "/d | /c | /b"},
		{"/a => /b | /c; /a => /d & /e", "/a/z", "/d/z & /e/z | (/b/z | /c/z)"},
	}
	for _, tt := range tests {
		d := MustParse(tt.dtab)
		got := ShowTree(d.Lookup(MustParsePath(tt.path)))
		if got != tt.want {
			t.Errorf("Lookup(%q, %s) = %q, want %q", tt.dtab, tt.path, got, tt.want)
		}
	}
	// The looked-up tree must not share rewritten leaves with the dtab.
	d := MustParse("/s => /a")
	l := d.Lookup(MustParsePath("/s/b"))
	l.Value[0] = "changed"
	if d.String() != "/s=>/a" {
		t.Errorf("Lookup result aliases the dtab: %s", d)
	}
	// Rewritten leaves share one allocation; appending must not clobber.
	two := MustParse("/s => /a | /b").Lookup(MustParsePath("/s/r"))
	_ = append(two.Alts[0].Value, "X")
	if got := ShowTree(two); got != "/a/r | /b/r" {
		t.Errorf("append to a looked-up leaf clobbered its neighbour: %s", got)
	}
}

func TestDtabConcat(t *testing.T) {
	base := MustParse("/a => /b")
	local := MustParse("/c => /d")
	got := base.Concat(local)
	if got.String() != "/a=>/b;/c=>/d" {
		t.Errorf("Concat = %s", got)
	}
	got[0] = local[0]
	if base.String() != "/a=>/b" {
		t.Error("Concat aliases its receiver")
	}
	if Dtab(nil).Concat(nil) != nil {
		t.Error("empty Concat not nil")
	}
	// ++ keeps the fall-back of §9.1: the local entry is tried first.
	eff := MustParse("/svc => /#/io.l5d.fs").Concat(MustParse("/svc/world => /#/io.l5d.fs/missing"))
	if got := ShowTree(eff.Lookup(MustParsePath("/svc/world"))); got != "/#/io.l5d.fs/missing | /#/io.l5d.fs/world" {
		t.Errorf("effective lookup = %s", got)
	}
}

func TestEqual(t *testing.T) {
	a := MustParse("/a => 2*/b & /c; /d => /e")
	if !a.Equal(MustParse("/a=>2.0*/b&/c;/d=>/e")) {
		t.Error("equal dtabs differ")
	}
	for _, other := range []string{
		"/a => 2*/b & /c", "/a => 3*/b & /c; /d => /e", "/a => /b & /c; /d => /e",
		"/a => 2*/b & /x; /d => /e", "/* => 2*/b & /c; /d => /e", "/a => 2*/b | /c; /d => /e",
	} {
		if a.Equal(MustParse(other)) {
			t.Errorf("%q equals %q", a, other)
		}
	}
}
