package dtab

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/ (the conformance vectors
// and the spec examples). Run one target with, e.g.:
//
//	go test -run '^$' -fuzz '^FuzzParseDtab$' -fuzztime 20s ./internal/dtab

// checkParseError verifies the shape of a rejected input's error.
func checkParseError(t *testing.T, in string, err error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %T (%v), want *ParseError", err, err)
	}
	if pe.Input != in || pe.Offset < 0 || pe.Offset > len(in) {
		t.Fatalf("bad error fields %+v for %q", pe, in)
	}
	msg := pe.Error()
	if !strings.Contains(msg, " expected but ") || !strings.HasSuffix(msg, "'") {
		t.Fatalf("malformed message %q", msg)
	}
	if utf8.ValidString(in) && !utf8.ValidString(msg) {
		t.Fatalf("message %q is not valid UTF-8 for valid input %q", msg, in)
	}
}

// exactWeights reports whether every weight of t prints without rounding,
// i.e. Parse(Show(t)) must give t back exactly.
func exactWeights(t NameTree) bool {
	switch t.Kind {
	case Alt:
		for _, c := range t.Alts {
			if !exactWeights(c) {
				return false
			}
		}
	case Union:
		for _, b := range t.Branches {
			back, err := strconv.ParseFloat(FormatWeight(b.Weight), 64)
			if err != nil || back != b.Weight || !exactWeights(b.Tree) {
				return false
			}
		}
	}
	return true
}

// checkPath verifies the Path invariant: no empty element.
func checkPath(t *testing.T, p Path) {
	t.Helper()
	for _, e := range p {
		if e == "" {
			t.Fatalf("path %q has an empty element", []string(p))
		}
	}
}

// checkTree verifies a parsed tree: no empty path element, no one-child
// Alt or Union, and that Simplify preserves Eval.
func checkTree(t *testing.T, tree NameTree) {
	t.Helper()
	var walk func(NameTree)
	walk = func(n NameTree) {
		switch n.Kind {
		case Leaf:
			checkPath(t, n.Value)
		case Alt:
			if len(n.Alts) < 2 {
				t.Fatalf("parsed Alt with %d children", len(n.Alts))
			}
			for _, c := range n.Alts {
				walk(c)
			}
		case Union:
			if len(n.Branches) < 2 {
				t.Fatalf("parsed Union with %d branches", len(n.Branches))
			}
			for _, b := range n.Branches {
				walk(b.Tree)
			}
		}
	}
	walk(tree)
	s := Simplify(tree)
	if got, want := evalText(s), evalText(tree); got != want {
		t.Fatalf("Eval(%s) = %s but Eval(Simplify) = %s", ShowTree(tree), want, got)
	}
	if !NameTreeEqual(Simplify(s), s) {
		t.Fatalf("Simplify not idempotent on %s", ShowTree(s))
	}
}

func FuzzParsePath(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParsePath(in)
		if err != nil {
			checkParseError(t, in, err)
			return
		}
		checkPath(t, p)
		shown := p.String()
		back, err := ParsePath(shown)
		if err != nil {
			t.Fatalf("ParsePath(%q) (printed from %q): %v", shown, in, err)
		}
		if !back.Equal(p) {
			t.Fatalf("round trip of %q: %q != %q", in, []string(back), []string(p))
		}
		if again := back.String(); again != shown {
			t.Fatalf("show/parse/show: %q -> %q", shown, again)
		}
		// A valid path is also a valid prefix with the same text.
		x, err := ParsePrefix(in)
		if err != nil || x.String() != shown {
			t.Fatalf("ParsePrefix(%q) = %s, %v; want %s", in, x, err, shown)
		}
	})
}

func FuzzParseTree(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		tree, err := ParseTree(in)
		if err != nil {
			checkParseError(t, in, err)
			return
		}
		checkTree(t, tree)
		shown := ShowTree(tree)
		back, err := ParseTree(shown)
		if err != nil {
			t.Fatalf("ParseTree(%q) (printed from %q): %v", shown, in, err)
		}
		if again := ShowTree(back); again != shown {
			t.Fatalf("show/parse/show: %q -> %q", shown, again)
		}
		if exactWeights(tree) && !NameTreeEqual(back, tree) {
			t.Fatalf("Parse(Show(x)) != x for %q (shown %q)", in, shown)
		}
		simple := ShowTree(Simplify(tree))
		if _, err := ParseTree(simple); err != nil {
			t.Fatalf("simplified form %q does not parse: %v", simple, err)
		}
	})
}

func FuzzParseDtab(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		d, err := Parse(in)
		if err != nil {
			checkParseError(t, in, err)
			return
		}
		exact := true
		for _, e := range d {
			checkTree(t, e.Dst)
			exact = exact && exactWeights(e.Dst)
		}
		shown := d.String()
		back, err := Parse(shown)
		if err != nil {
			t.Fatalf("Parse(%q) (printed from %q): %v", shown, in, err)
		}
		if again := back.String(); again != shown {
			t.Fatalf("show/parse/show: %q -> %q", shown, again)
		}
		if exact && !back.Equal(d) {
			t.Fatalf("Parse(Show(x)) != x for %q (shown %q)", in, shown)
		}
		if len(d) > 0 {
			checkLookup(t, d)
		}
		// Every dentry prints and reparses on its own too.
		for _, e := range d {
			one, err := ParseDentry(e.String())
			if err != nil || one.String() != e.String() {
				t.Fatalf("ParseDentry(%q) = %s, %v", e.String(), one, err)
			}
		}
	})
}

// checkLookup looks up a path built from the last dentry's prefix (plus
// one extra element) and checks the result against a direct computation.
func checkLookup(t *testing.T, d Dtab) {
	t.Helper()
	last := d[len(d)-1]
	path := make(Path, 0, len(last.Prefix)+1)
	for _, e := range last.Prefix {
		if e.Any {
			path = append(path, "any")
		} else {
			path = append(path, e.Label)
		}
	}
	path = append(path, "rest")
	matches := 0
	for _, e := range d {
		if _, ok := e.Prefix.Match(path); ok {
			matches++
		}
	}
	want := Map(last.Dst, func(l Path) Path { return l.Concat(Path{"rest"}) })
	got := d.Lookup(path)
	if matches > 1 {
		if got.Kind != Alt || len(got.Alts) != matches {
			t.Fatalf("Lookup(%s) in %s = %s, want an Alt of %d", path, d, ShowTree(got), matches)
		}
		got = got.Alts[0]
	}
	if !NameTreeEqual(got, want) {
		t.Fatalf("Lookup(%s) in %s: first match %s, want %s", path, d, ShowTree(got), ShowTree(want))
	}
}
