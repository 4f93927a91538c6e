package dtab

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestSimplify(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/a", "/a"},
		{"~", "~"},
		{"!", "!"},
		{"$", "$"},
		// Alt: Neg dropped, Fail kept and ends the list, Empty and leaves kept.
		{"~ | /foo | /bar", "/foo | /bar"},
		{"! | /ok", "!"},
		{"/a | ! | /b", "/a | !"},
		{"~ | $ | /blah", "$ | /blah"},
		{"$ | ~ | /a", "$ | /a"},
		{"~ | ~", "~"},
		{"~ | /a", "/a"},
		{"(~ | !) | /a", "!"},
		{"(/a | ~) | /b", "/a | /b"},
		{"(/a | /b) | /c", "(/a | /b) | /c"}, // not flattened
		// Union: Neg and Fail branches dropped, weights kept, Empty kept.
		{"/ok & ! & ~", "/ok"},
		{"! & ! & !", "~"}, // a union of failures is negative, not failed
		{"~ & ~ & (~ | ~)", "~"},
		{"2 * /a & ! & 3 * /b", "2.00*/a & 3.00*/b"},
		{"2 * /a & !", "/a"}, // one branch left: its weight is dropped
		{"/a & $", "/a & $"},
		{"(/a & ~) & /b", "/a & /b"},
		{"(/a & /b) & /c", "(/a & /b) & /c"},
		{"(~|$|/foo) & (/bar|/blah) & ~ & /FOO", "($ | /foo) & (/bar | /blah) & /FOO"},
		{"(! & !) | /a", "/a"},
	}
	for _, tt := range tests {
		s := Simplify(MustParseTree(tt.in))
		if got := ShowTree(s); got != tt.want {
			t.Errorf("Simplify(%s) = %s, want %s", tt.in, got, tt.want)
		}
		if again := ShowTree(Simplify(s)); again != tt.want {
			t.Errorf("Simplify not idempotent on %s: %s", tt.want, again)
		}
	}
	// Programmatic shapes.
	a := leaf("a")
	for _, tt := range []struct {
		in   NameTree
		want string
	}{
		{AltTree[Path](), "~"},
		{UnionTree[Path](), "~"},
		{AltTree(a), "/a"},
		{UnionTree(w(5, AltTree(NegTree[Path](), a))), "/a"},
	} {
		if got := ShowTree(Simplify(tt.in)); got != tt.want {
			t.Errorf("Simplify(%s) = %s, want %s", ShowTree(tt.in), got, tt.want)
		}
	}
}

func TestEval(t *testing.T) {
	tests := []struct {
		in   string
		want string // "null" or the sorted, deduplicated leaves joined by ","
	}{
		{"~", "null"},
		{"!", "null"},
		{"$", ""},
		{"/a", "/a"},
		{"~ | /foo | /bar", "/foo"},
		{"! | /ok", "null"},
		{"/a | ! | /b", "/a"},
		{"~ | $ | /blah", ""}, // Empty stops the search with the empty set
		{"~ | ~", "null"},
		{"(! | /a) | /b", "null"}, // a failing alternative stops the fail-over
		{"(~ | ~) | /b", "/b"},
		{"(! & !) | /b", "/b"}, // a union of failures is negative
		{"/ok & ! & ~", "/ok"},
		{"! & ! & !", "null"},
		{"/a & $", "/a"},
		{"$ & ~", ""},
		{"/a & /b & /a", "/a,/b"},
		{"0 * /a & /b", "/a,/b"}, // weights are ignored
		{"(~|$|/foo) & (/bar|/blah) & ~ & /FOO", "/FOO,/bar"},
	}
	for _, tt := range tests {
		tree := MustParseTree(tt.in)
		for _, in := range []NameTree{tree, Simplify(tree)} {
			if got := evalText(in); got != tt.want {
				t.Errorf("Eval(%s) = %s, want %s", ShowTree(in), got, tt.want)
			}
		}
	}
	for _, in := range []NameTree{AltTree[Path](), UnionTree[Path]()} {
		if got := evalText(in); got != "null" {
			t.Errorf("Eval of zero-child %v = %s, want null", in.Kind, got)
		}
	}
	if leaves, ok := Eval(EmptyTree[Path]()); !ok || leaves == nil || len(leaves) != 0 {
		t.Errorf("Eval($) = %v, %v; want empty non-nil set", leaves, ok)
	}
	// Leaves come out in depth-first order.
	leaves, ok := Eval(UnionTree(w(1, LeafTree(3)), w(1, AltTree(NegTree[int](), LeafTree(1))), w(1, LeafTree(2))))
	if !ok || !slices.Equal(leaves, []int{3, 1, 2}) {
		t.Errorf("Eval order = %v, %v", leaves, ok)
	}
}

func evalText(t NameTree) string {
	leaves, ok := Eval(t)
	if !ok {
		return "null"
	}
	s := make([]string, len(leaves))
	for i, l := range leaves {
		s[i] = l.String()
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ",")
}

func TestMapFlatMap(t *testing.T) {
	tree := MustParseTree("2 * /a & (/b | ! | ~) & $")
	lens := Map(tree, func(p Path) int { return len(p[0]) })
	if got := ShowTreeFunc(lens, strconv.Itoa); got != "2.00*1 & (1 | ! | ~) & $" {
		t.Errorf("Map = %s", got)
	}
	fm := FlatMap(tree, func(p Path) NameTree {
		if p[0] == "a" {
			return AltTree(leaf("x"), leaf("y"))
		}
		return NegTree[Path]()
	})
	if got := ShowTree(fm); got != "2.00*(/x | /y) & (~ | ! | ~) & $" {
		t.Errorf("FlatMap = %s", got)
	}
	if got := ShowTree(tree); got != "2.00*/a & (/b | ! | ~) & $" {
		t.Errorf("FlatMap modified its input: %s", got)
	}
}

func TestTreeEqual(t *testing.T) {
	a := MustParseTree("2 * /a & (/b | !) & $")
	if !NameTreeEqual(a, MustParseTree("2.0*/a&(/b|!)&$")) {
		t.Error("equal trees differ")
	}
	if !NameTreeEqual(MustParseTree("/a"), MustParseTree("(/a)")) {
		t.Error("parentheses should not matter")
	}
	for _, s := range []string{
		"/a & (/b | !) & $", "2 * /a & (/b | !)", "2 * /a & (/b | ~) & $",
		"2 * /a & (/c | !) & $", "2 * /a & (/b | ! | !) & $", "2 * /a & (/b & !) & $", "/a",
	} {
		if NameTreeEqual(a, MustParseTree(s)) {
			t.Errorf("%s equals %s", ShowTree(a), s)
		}
	}
	if NameTreeEqual(MustParseTree("/a"), MustParseTree("/a | ~")) {
		t.Error("no simplification expected")
	}
}

// randTree builds a random name tree over a few leaves, with weights of at
// most two decimals, including shapes the parser never produces.
func randTree(r *rand.Rand, depth int) NameTree {
	k := r.IntN(10)
	if depth <= 0 {
		k %= 5
	}
	switch k {
	case 0:
		return NegTree[Path]()
	case 1:
		return FailTree[Path]()
	case 2:
		return EmptyTree[Path]()
	case 3, 4:
		return leaf(string(rune('a' + r.IntN(4))))
	case 5, 6, 7:
		n := r.IntN(4)
		alts := make([]NameTree, n)
		for i := range alts {
			alts[i] = randTree(r, depth-1)
		}
		return AltTree(alts...)
	default:
		n := r.IntN(4)
		bs := make([]Weighted[Path], n)
		for i := range bs {
			bs[i] = w(float64(r.IntN(400))/100, randTree(r, depth-1))
		}
		return UnionTree(bs...)
	}
}

// TestAlgebraProperties checks on random trees that Simplify preserves
// Eval and is idempotent, and that printing round-trips through the parser.
func TestAlgebraProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		tree := randTree(r, 4)
		s := Simplify(tree)
		if got, want := evalText(s), evalText(tree); got != want {
			t.Fatalf("#%d: Eval(%s) = %s but Eval(Simplify) = Eval(%s) = %s", i, ShowTree(tree), want, ShowTree(s), got)
		}
		if s2 := Simplify(s); !NameTreeEqual(s, s2) {
			t.Fatalf("#%d: Simplify not idempotent: %s -> %s", i, ShowTree(s), ShowTree(s2))
		}
		shown := ShowTree(tree)
		back, err := ParseTree(shown)
		if err != nil {
			t.Fatalf("#%d: ParseTree(ShowTree) of %s: %v", i, shown, err)
		}
		if again := ShowTree(back); again != shown {
			t.Fatalf("#%d: show/parse/show: %s -> %s", i, shown, again)
		}
		if got, want := evalText(back), evalText(tree); got != want {
			t.Fatalf("#%d: reparsed %s evaluates to %s, want %s", i, shown, got, want)
		}
	}
}
