package dtab

import (
	"math"
	"testing"
)

func TestPathString(t *testing.T) {
	tests := []struct {
		in   Path
		want string
	}{
		{nil, "/"},
		{Path{}, "/"},
		{p("svc", "users"), "/svc/users"},
		{p("a b"), `/\x61\x20\x62`},                   // every byte of the element is escaped
		{p("café"), `/\x63\x61\x66\xc3\xa9`},          // UTF-8 bytes, lowercase hex
		{p("ok", "a/b", "ok"), `/ok/\x61\x2f\x62/ok`}, // only the offending element
		{p("*"), `/\x2a`},
		{p("\x00\xff"), `/\x00\xff`},
		{p("#", "io.l5d.fs", "b#c"), "/#/io.l5d.fs/b#c"},
	}
	for _, tt := range tests {
		got := tt.in.String()
		if got != tt.want {
			t.Errorf("%q.String() = %q, want %q", []string(tt.in), got, tt.want)
		}
		back, err := ParsePath(got)
		if err != nil || !back.Equal(tt.in) {
			t.Errorf("ParsePath(%q) = %q, %v; want %q", got, []string(back), err, []string(tt.in))
		}
	}
	// An element written with escapes of plain bytes prints plainly.
	if got := MustParsePath(`/\x77orld`).String(); got != "/world" {
		t.Errorf(`\x77orld printed as %q`, got)
	}
}

func TestPrefixString(t *testing.T) {
	tests := []struct {
		in   Prefix
		want string
	}{
		{nil, "/"},
		{Prefix{{Label: "x"}, {Any: true}, {Label: "y"}}, "/x/*/y"},
		{Prefix{{Label: "*"}}, `/\x2a`},
		{Prefix{{Label: "a b"}, {Any: true}}, `/\x61\x20\x62/*`},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%v.String() = %q, want %q", tt.in, got, tt.want)
		}
		back, err := ParsePrefix(tt.want)
		if err != nil || !back.Equal(tt.in) {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %v", tt.want, back, err, tt.in)
		}
	}
}

// TestShowCanonical covers the printing rules of §4 through parse + show.
func TestShowCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/a", "/a"},
		{"/a | /b | /c", "/a | /b | /c"},
		{"/a & /b | /c", "/a & /b | /c"},
		{"(/a | /b) & /c", "(/a | /b) & /c"},
		{"/a | (/b | /c)", "/a | (/b | /c)"}, // nested groups keep their parentheses
		{"(/a | /b) | /c", "(/a | /b) | /c"},
		{"(/a & /b) & /c", "(/a & /b) & /c"},
		{"/a & (/b & /c)", "/a & (/b & /c)"},
		{"((/b & /c)) | ((/d))", "/b & /c | /d"}, // redundant ones disappear
		{"2 * (/a | /b) & 1 * /c", "2.00*(/a | /b) & /c"},
		{"1.0 * /a & 1.00 * /b", "/a & /b"}, // weight exactly 1 is omitted
		{"1.001 * /a & /b", "1.00*/a & /b"}, // not exactly 1: printed, rounded
		{"3 * /b", "/b"},
		{"! | ~ | $", "! | ~ | $"},
		{"0 * ! & 0.5 * ~ & 10 * $", "0.00*! & 0.50*~ & 10.00*$"},
		{"/$/nil", "/$/nil"},
		{"/", "/"},
		{"/ & /", "/ & /"},
	}
	for _, tt := range tests {
		tree, err := ParseTree(tt.in)
		if err != nil {
			t.Errorf("ParseTree(%q): %v", tt.in, err)
			continue
		}
		if got := ShowTree(tree); got != tt.want {
			t.Errorf("ShowTree(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestShowProgrammatic covers trees the parser never builds.
func TestShowProgrammatic(t *testing.T) {
	a, b, c := leaf("a"), leaf("b"), leaf("c")
	tests := []struct {
		name string
		in   NameTree
		want string
	}{
		{"one-child alt", AltTree(a), "/a"},
		{"one-child union", UnionTree(w(3, a)), "/a"},
		{"zero-child alt", AltTree[Path](), "~"},
		{"zero-child union", UnionTree[Path](), "~"},
		{"one-child alt of alt", AltTree(AltTree(a, b)), "/a | /b"},
		{"one-child union in union", UnionTree(w(1, UnionTree(w(2, AltTree(a, b)))), w(1, c)), "(/a | /b) & /c"},
		{"one-child alt as alt item", AltTree(AltTree(UnionTree(w(1, a), w(1, b))), c), "/a & /b | /c"},
		{"zero-child union in union", UnionTree(w(1, UnionTree[Path]()), w(2, a)), "~ & 2.00*/a"},
		{"negative weight", UnionTree(w(-2.675, a), w(1, b)), "-2.68*/a & /b"},
		{"invalid kind", Tree[Path]{Kind: 42}, "<invalid kind 42>"},
	}
	for _, tt := range tests {
		if got := ShowTree(tt.in); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestShowTreeFunc(t *testing.T) {
	tree := UnionTree(
		Weighted[int]{Weight: 2, Tree: LeafTree(1)},
		Weighted[int]{Weight: 1, Tree: AltTree(LeafTree(2), NegTree[int]())},
	)
	got := ShowTreeFunc(tree, func(v int) string { return "#" + string(rune('0'+v)) })
	if want := "2.00*#1 & (#2 | ~)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDtabString(t *testing.T) {
	d := MustParse(" /svc => /#/io.l5d.fs ; /svc/world => 3 * /a & /b | ~ ;")
	if got, want := d.String(), "/svc=>/#/io.l5d.fs;/svc/world=>3.00*/a & /b | ~"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := d[1].String(), "/svc/world=>3.00*/a & /b | ~"; got != want {
		t.Errorf("dentry: got %q, want %q", got, want)
	}
	if got := Dtab(nil).String(); got != "" {
		t.Errorf("empty dtab printed %q", got)
	}
}

func TestFormatWeight(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{2.675, "2.68"}, // binary value is below .675: half-up on the shortest decimal
		{1.005, "1.01"},
		{0.125, "0.13"},
		{0.5, "0.50"},
		{10, "10.00"},
		{0, "0.00"},
		{12345678.9, "12345678.90"},
		{1, "1.00"},
		{0.1, "0.10"},
		{0.004, "0.00"},
		{0.005, "0.01"},
		{0.995, "1.00"},
		{9.995, "10.00"},
		{99.996, "100.00"},
		{999.999, "1000.00"},
		{1.994, "1.99"},
		{1e21, "1000000000000000000000.00"},
		{5e-324, "0.00"},
		{-2.675, "-2.68"},
		{math.Copysign(0, -1), "-0.00"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "Infinity"},
		{math.Inf(-1), "-Infinity"},
	}
	for _, tt := range tests {
		if got := FormatWeight(tt.in); got != tt.want {
			t.Errorf("FormatWeight(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatWeightJSON(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{1, "1.0"},
		{3, "3.0"},
		{0.9, "0.9"},
		{0.25, "0.25"},
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{2.675, "2.675"},
		{0.001, "0.001"},
		{0.0001, "1.0E-4"},
		{1.5e-5, "1.5E-5"},
		{9999999, "9999999.0"},
		{1e7, "1.0E7"},
		{1.25e10, "1.25E10"},
		{1e21, "1.0E21"},
		{-3, "-3.0"},
		{math.MaxFloat64, "1.7976931348623157E308"},
		{math.NaN(), `"NaN"`},
		{math.Inf(1), `"Infinity"`},
	}
	for _, tt := range tests {
		if got := FormatWeightJSON(tt.in); got != tt.want {
			t.Errorf("FormatWeightJSON(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Neg: "Neg", Fail: "Fail", Empty: "Empty", Leaf: "Leaf", Alt: "Alt", Union: "Union", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}
