package dtab

import (
	"errors"
	"strings"
	"testing"
)

// p is shorthand for a path in expectations.
func p(elems ...string) Path { return Path(elems) }

func leaf(elems ...string) NameTree { return LeafTree(p(elems...)) }

func w[T any](weight float64, t Tree[T]) Weighted[T] { return Weighted[T]{Weight: weight, Tree: t} }

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want Path
	}{
		{"/", nil},
		{"/svc/users", p("svc", "users")},
		{`/a\x2fb`, p("a/b")},        // an escape is one byte, even '/'
		{`/\x77orld`, p("world")},    // escapes of plain characters
		{`/\x4A\x4b`, p("JK")},       // hex digits in either case
		{`/caf\xc3\xa9`, p("café")},  // UTF-8 bytes
		{`/\xff\x00`, p("\xff\x00")}, // arbitrary bytes
		{"/b#c", p("b#c")},           // '#' inside a label is a character
		{"/b #c", p("b")},            // '#' after a blank starts a comment
		{"/#/io.l5d.fs", p("#", "io.l5d.fs")},
		{"/$/inet/127.1/8080", p("$", "inet", "127.1", "8080")},
		{"/AZaz09_:.#$%-", p("AZaz09_:.#$%-")}, // every plain class
		{"  /a/b  ", p("a", "b")},
		{"# leading comment\n/a # trailing comment", p("a")},
		{"\t\n\v\f\r\x1c\x1d\x1e\x1f /a", p("a")},
		{"\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006/a\u2008\u2009\u200a\u2028\u2029\u205f\u3000", p("a")},
		{"/a/b # comment without newline", p("a", "b")},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("ParsePath(%q) = %q, want %q", tt.in, []string(got), []string(tt.want))
		}
	}
}

// TestParseErrors checks messages and positions byte for byte (§3.8).
func TestParseErrors(t *testing.T) {
	tests := []struct {
		what string // path, prefix, tree, dentry or dtab
		in   string
		want string
	}{
		// §3.8 examples.
		{"dtab", "/a => /b;;", `'/' expected but ';' found at '/a => /b;[;]'`},
		{"dtab", "/a/ => /b", `label char expected but ' ' found at '/a/[ ]=> /b'`},
		{"path", "invalid", `'/' expected but 'i' found at '[i]nvalid'`},
		{"dtab", "/a => . * /b", `weight expected but '.' found at '/a => .[ ]* /b'`},
		{"dtab", "/a => .", `weight expected but '.' found at '/a => .[]'`},
		// Paths (§3.2).
		{"path", "", `'/' expected but end of input found at '[]'`},
		{"path", "   ", `'/' expected but end of input found at '   []'`},
		{"path", "//", `end of input expected but '/' found at '/[/]'`},
		{"path", "/a//b", `label char expected but '/' found at '/a/[/]b'`},
		{"path", "/a/", `label char expected but end of input found at '/a/[]'`},
		{"path", `/\X41`, `'x' expected but 'X' found at '/\[X]41'`},
		{"path", `/\y`, `'x' expected but 'y' found at '/\[y]'`},
		{"path", `/a\x4`, `hex char expected but end of input found at '/a\x4[]'`},
		{"path", `/a\`, `'x' expected but end of input found at '/a\[]'`},
		{"path", "/ foo", `end of input expected but 'f' found at '/ [f]oo'`},
		{"path", "/a b", `end of input expected but 'b' found at '/a [b]'`},
		{"path", "/a*", `end of input expected but '*' found at '/a[*]'`},
		{"path", "/*", `end of input expected but '*' found at '/[*]'`},
		{"path", "/café", `end of input expected but 'é' found at '/caf[é]'`},
		{"path", "/a\u00a0", "end of input expected but '\u00a0' found at '/a[\u00a0]'"}, // NBSP is not blank
		{"path", "/a\u2007", "end of input expected but '\u2007' found at '/a[\u2007]'"},
		{"path", "/a\u202f", "end of input expected but '\u202f' found at '/a[\u202f]'"},
		{"path", "/a\u0085", "end of input expected but '\u0085' found at '/a[\u0085]'"},
		{"path", "/a\xff/b", "end of input expected but '\xff' found at '/a[\xff]/b'"}, // invalid UTF-8: one byte
		{"path", "/a/🙂", "label char expected but '🙂' found at '/a/[🙂]'"},
		// Prefixes (§3.5).
		{"dtab", "/a/*b => /c", `'=' expected but 'b' found at '/a/*[b] => /c'`},
		{"dtab", "/a/b* => /c", `'=' expected but '*' found at '/a/b[*] => /c'`},
		{"dtab", "/*b => /c", `'=' expected but 'b' found at '/*[b] => /c'`},
		{"prefix", "/a/**", `end of input expected but '*' found at '/a/*[*]'`},
		{"prefix", "a", `'/' expected but 'a' found at '[a]'`},
		// Trees (§3.6).
		{"dtab", "/a => /b/*", `label char expected but '*' found at '/a => /b/[*]'`},
		{"dtab", "/a => 1e3 * /b", `'*' expected but 'e' found at '/a => 1[e]3 * /b'`},
		{"dtab", "/a => -1 * /b", `simple expected but '-' found at '/a => [-]1 * /b'`},
		{"dtab", "/a => 1.2.3 * /b", `number char expected but '.' found at '/a => 1.2[.]3 * /b'`},
		{"dtab", "/a => 2 /b", `'*' expected but '/' found at '/a => 2 [/]b'`},
		{"dtab", "/a => 2 * * /b", `simple expected but '*' found at '/a => 2 * [*] /b'`},
		{"tree", "", `simple expected but end of input found at '[]'`},
		{"tree", "/a |", `simple expected but end of input found at '/a |[]'`},
		{"tree", "| /a", `simple expected but '|' found at '[|] /a'`},
		{"tree", "()", `simple expected but ')' found at '([)]'`},
		{"tree", "(/a", `')' expected but end of input found at '(/a[]'`},
		{"tree", "/a)", `end of input expected but ')' found at '/a[)]'`},
		{"tree", "/a & & /b", `simple expected but '&' found at '/a & [&] /b'`},
		{"tree", "$foo", `end of input expected but 'f' found at '$[f]oo'`},
		{"tree", "/a => /b", `end of input expected but '=' found at '/a [=]> /b'`},
		// Dentries and dtabs (§3.7).
		{"dtab", ";", `'/' expected but ';' found at '[;]'`},
		{"dtab", "; /a => /b", `'/' expected but ';' found at '[;] /a => /b'`},
		{"dtab", "/a => /b; ;", `'/' expected but ';' found at '/a => /b; [;]'`},
		{"dtab", "/a = > /b", `'>' expected but ' ' found at '/a =[ ]> /b'`},
		{"dtab", "/a > /b", `'=' expected but '>' found at '/a [>] /b'`},
		{"dtab", "/a =>", `simple expected but end of input found at '/a =>[]'`},
		{"dtab", "/a", `'=' expected but end of input found at '/a[]'`},
		{"dtab", "/a => /b /c", `end of input expected but '/' found at '/a => /b [/]c'`},
		{"dtab", "/svc => #/io.l5d.fs", `simple expected but end of input found at '/svc => #/io.l5d.fs[]'`},
		{"dentry", "/a => /b;", `end of input expected but ';' found at '/a => /b[;]'`},
		{"dentry", "", `'/' expected but end of input found at '[]'`},
		// Overflowing weights are rejected (the one deliberate difference).
		{"tree", "1" + strings.Repeat("0", 400) + " * /a & /b", `finite weight expected but '1' found at '[1]` + strings.Repeat("0", 400) + ` * /a & /b'`},
	}
	for _, tt := range tests {
		var err error
		switch tt.what {
		case "path":
			_, err = ParsePath(tt.in)
		case "prefix":
			_, err = ParsePrefix(tt.in)
		case "tree":
			_, err = ParseTree(tt.in)
		case "dentry":
			_, err = ParseDentry(tt.in)
		case "dtab":
			_, err = Parse(tt.in)
		default:
			t.Fatalf("bad test kind %q", tt.what)
		}
		if err == nil {
			t.Errorf("%s %q: no error, want %s", tt.what, tt.in, tt.want)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s %q: error %T, want *ParseError", tt.what, tt.in, err)
		}
		if err.Error() != tt.want {
			t.Errorf("%s %q:\n got %s\nwant %s", tt.what, tt.in, err, tt.want)
		}
	}
}

func TestParseErrorFields(t *testing.T) {
	_, err := Parse("/a => /b;;")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %T, want *ParseError", err)
	}
	want := ParseError{Input: "/a => /b;;", Offset: 9, Expected: "'/'", Found: ";"}
	if *pe != want {
		t.Errorf("got %+v, want %+v", *pe, want)
	}
}

func TestNestingLimit(t *testing.T) {
	ok := strings.Repeat("(", MaxNesting) + "/a" + strings.Repeat(")", MaxNesting)
	if _, err := ParseTree(ok); err != nil {
		t.Errorf("%d nested groups: %v", MaxNesting, err)
	}
	deep := "(" + ok + ")"
	_, err := ParseTree(deep)
	if err == nil {
		t.Fatalf("%d nested groups accepted", MaxNesting+1)
	}
	if want := "at most 1000 nested groups; ')' expected but '(' found at '"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want prefix %q", err, want)
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in   string
		want Prefix
	}{
		{"/", nil},
		{" / ", nil},
		{"/a/*/b", Prefix{{Label: "a"}, {Any: true}, {Label: "b"}}},
		{"/*", Prefix{{Any: true}}},
		{`/\x2a`, Prefix{{Label: "*"}}}, // an escaped star is a literal label
		{"/#/io.l5d.fs", Prefix{{Label: "#"}, {Label: "io.l5d.fs"}}},
	}
	for _, tt := range tests {
		got, err := ParsePrefix(tt.in)
		if err != nil {
			t.Errorf("ParsePrefix(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("ParsePrefix(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseTree(t *testing.T) {
	tests := []struct {
		in   string
		want NameTree
	}{
		{"/a", leaf("a")},
		{"/", LeafTree(Path(nil))},
		{"!", FailTree[Path]()},
		{"~", NegTree[Path]()},
		{"$", EmptyTree[Path]()},
		{"/$/nil", leaf("$", "nil")}, // '$' is Empty only as a whole operand
		{"(/a)", leaf("a")},          // parentheses create no node
		{"((( ~ )))", NegTree[Path]()},
		{"3 * /a", leaf("a")}, // the weight of a lone operand is discarded
		{"/a & /b | /c", AltTree(UnionTree(w(1, leaf("a")), w(1, leaf("b"))), leaf("c"))},
		{"/a | /b & /c", AltTree(leaf("a"), UnionTree(w(1, leaf("b")), w(1, leaf("c"))))},
		{"(/a | /b) | /c", AltTree(AltTree(leaf("a"), leaf("b")), leaf("c"))},
		{"(/a & /b) & /c", UnionTree(w(1, UnionTree(w(1, leaf("a")), w(1, leaf("b")))), w(1, leaf("c")))},
		{"2*(/a|/b)&.5*$", UnionTree(w(2, AltTree(leaf("a"), leaf("b"))), w(0.5, EmptyTree[Path]()))},
		{"1. * /a & .5 * /b & 007 * /c & 0 * /d", UnionTree(w(1, leaf("a")), w(0.5, leaf("b")), w(7, leaf("c")), w(0, leaf("d")))},
		{"  1 \n * \t /a  &  2\n*/b  ", UnionTree(w(1, leaf("a")), w(2, leaf("b")))},
		{"( # comment\n /a | /b # another\n )", AltTree(leaf("a"), leaf("b"))},
		{"! | ~ | $", AltTree(FailTree[Path](), NegTree[Path](), EmptyTree[Path]())},
		{"0.1 * /a & 0.2 * /b", UnionTree(w(0.1, leaf("a")), w(0.2, leaf("b")))},
	}
	for _, tt := range tests {
		got, err := ParseTree(tt.in)
		if err != nil {
			t.Errorf("ParseTree(%q): %v", tt.in, err)
			continue
		}
		if !NameTreeEqual(got, tt.want) {
			t.Errorf("ParseTree(%q) = %s, want %s", tt.in, ShowTree(got), ShowTree(tt.want))
		}
	}
}

func TestParseDtab(t *testing.T) {
	tests := []struct {
		in   string
		want Dtab
	}{
		{"", nil},
		{"  \n\t ", nil},
		{"# only a comment", nil},
		{"# one\n# two\n", nil},
		{"/a=>/b", Dtab{{Prefix{{Label: "a"}}, leaf("b")}}},
		{"/a=>/b;", Dtab{{Prefix{{Label: "a"}}, leaf("b")}}},
		{"/a => /b ; # end\n", Dtab{{Prefix{{Label: "a"}}, leaf("b")}}},
		{"/ => /a; /x/*/y => ~", Dtab{
			{nil, leaf("a")},
			{Prefix{{Label: "x"}, {Any: true}, {Label: "y"}}, NegTree[Path]()},
		}},
		{"/a=>/b#c;/d=>/e", Dtab{ // '#' inside the label /b#c
			{Prefix{{Label: "a"}}, leaf("b#c")},
			{Prefix{{Label: "d"}}, leaf("e")},
		}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseDentry(t *testing.T) {
	d, err := ParseDentry("  /svc/* =>  /#/io.l5d.fs | ~ # comment")
	if err != nil {
		t.Fatal(err)
	}
	want := Dentry{Prefix{{Label: "svc"}, {Any: true}}, AltTree(leaf("#", "io.l5d.fs"), NegTree[Path]())}
	if !d.Equal(want) {
		t.Errorf("got %s, want %s", d, want)
	}
}

// TestWhitespaceSet checks every code point up to U+3000 against the Java
// Character.isWhitespace set of spec/dtab.md §3.4, by parsing "/a<c>".
func TestWhitespaceSet(t *testing.T) {
	java := map[rune]bool{0x1680: true, 0x2028: true, 0x2029: true, 0x205f: true, 0x3000: true, ' ': true}
	for r := rune(0x09); r <= 0x0d; r++ {
		java[r] = true
	}
	for r := rune(0x1c); r <= 0x1f; r++ {
		java[r] = true
	}
	for r := rune(0x2000); r <= 0x200a; r++ {
		java[r] = r != 0x2007
	}
	for r := rune(1); r <= 0x3000; r++ {
		if plain[byte(r)] && r < 0x80 || r == '\\' || r == '/' || r == '#' || r >= 0xd800 && r < 0xe000 {
			continue // these continue or are part of the path text
		}
		_, err := ParsePath("/a" + string(r))
		if got := err == nil; got != java[r] {
			t.Errorf("U+%04X: accepted as trailing blank = %v, want %v", r, got, java[r])
		}
	}
}

func TestMustParse(t *testing.T) {
	if got := MustParse("/a=>/b").String(); got != "/a=>/b" {
		t.Errorf("MustParse: %q", got)
	}
	if got := MustParsePath("/a/b").String(); got != "/a/b" {
		t.Errorf("MustParsePath: %q", got)
	}
	if got := ShowTree(MustParseTree("/a|/b")); got != "/a | /b" {
		t.Errorf("MustParseTree: %q", got)
	}
	for name, f := range map[string]func(){
		"MustParse":     func() { MustParse(";") },
		"MustParsePath": func() { MustParsePath("x") },
		"MustParseTree": func() { MustParseTree("") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic on bad input", name)
				}
			}()
			f()
		}()
	}
}

// TestArenaWindows checks that appending to a parsed path or prefix never
// overwrites the next one (they are cut from shared arenas).
func TestArenaWindows(t *testing.T) {
	d := MustParse("/a/b => /c/d | /e/f; /g => /h")
	alt := d[0].Dst.Alts
	first := alt[0].Value
	_ = append(first, "X")
	if got := alt[1].Value.String(); got != "/e/f" {
		t.Errorf("append to a parsed path clobbered its neighbour: %s", got)
	}
	_ = append(d[0].Prefix, PrefixElem{Label: "X"})
	if got := d[1].Prefix.String(); got != "/g" {
		t.Errorf("append to a parsed prefix clobbered its neighbour: %s", got)
	}
}
