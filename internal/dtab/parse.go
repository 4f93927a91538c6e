package dtab

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxNesting is the deepest parenthesis nesting the parser accepts in a
// name tree. Linkerd has no explicit limit (the JVM stack overflows at some
// point); an explicit one keeps hostile l5d-dtab headers cheap to reject.
const MaxNesting = 1000

// ParseError reports malformed dtab, dentry, prefix, name-tree or path
// text. Its Error method returns the exact message Linkerd produces
// (spec/dtab.md §3.8), e.g.
//
//	'/' expected but ';' found at '/a => /b;[;]'
type ParseError struct {
	// Input is the whole text that was parsed.
	Input string
	// Offset is the byte offset of the character marked in the context;
	// len(Input) when the input was exhausted.
	Offset int
	// Expected names what the parser wanted: a quoted character such as
	// "'/'", or a word such as "label char", "simple" or "end of input".
	Expected string
	// Found is the offending character (one UTF-8 encoded character, or one
	// byte if the input is not valid UTF-8 there); "" means end of input.
	Found string
}

// Error returns "<expected> expected but <found> found at '<context>'",
// where the context is the input with the offending character wrapped in
// brackets, or the input followed by "[]" when it was exhausted.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.Grow(len(e.Expected) + len(e.Found) + len(e.Input) + 40)
	b.WriteString(e.Expected)
	b.WriteString(" expected but ")
	if e.Found == "" {
		b.WriteString("end of input")
	} else {
		b.WriteByte('\'')
		b.WriteString(e.Found)
		b.WriteByte('\'')
	}
	b.WriteString(" found at '")
	off := min(max(e.Offset, 0), len(e.Input))
	b.WriteString(e.Input[:off])
	b.WriteByte('[')
	if off < len(e.Input) {
		n := charLen(e.Input, off)
		b.WriteString(e.Input[off : off+n])
		b.WriteByte(']')
		b.WriteString(e.Input[off+n:])
	} else {
		b.WriteByte(']')
	}
	b.WriteByte('\'')
	return b.String()
}

// Parse parses a dtab (spec/dtab.md §3.7): dentries separated by ';', one
// trailing ';' allowed, whitespace and comments anywhere blanks are
// skipped. The empty text is the empty dtab. Errors are *ParseError.
func Parse(s string) (Dtab, error) {
	p := newParser(s)
	d := p.dtab()
	p.end()
	if p.err != nil {
		return nil, p.err
	}
	return d, nil
}

// ParseDentry parses one dentry "prefix => tree", optionally surrounded by
// whitespace and comments. Errors are *ParseError.
func ParseDentry(s string) (Dentry, error) {
	p := newParser(s)
	d := p.dentry()
	p.end()
	if p.err != nil {
		return Dentry{}, p.err
	}
	return d, nil
}

// ParsePath parses a path (spec/dtab.md §3.2), optionally surrounded by
// whitespace and comments. Errors are *ParseError.
func ParsePath(s string) (Path, error) {
	p := newParser(s)
	path := p.path()
	p.end()
	if p.err != nil {
		return nil, p.err
	}
	return path, nil
}

// ParsePrefix parses a dentry prefix (spec/dtab.md §3.5): a path whose
// elements may also be the wildcard "*". Whitespace and comments around it
// are ignored. Errors are *ParseError.
func ParsePrefix(s string) (Prefix, error) {
	p := newParser(s)
	pfx := p.prefix()
	p.end()
	if p.err != nil {
		return nil, p.err
	}
	return pfx, nil
}

// ParseTree parses a name tree (spec/dtab.md §3.6), the right-hand side of
// a dentry. Errors are *ParseError.
func ParseTree(s string) (NameTree, error) {
	p := newParser(s)
	t := p.tree()
	p.end()
	if p.err != nil {
		return NameTree{}, p.err
	}
	return t, nil
}

// MustParse is Parse for texts known to be valid (constants, tests); it
// panics on error.
func MustParse(s string) Dtab {
	d, err := Parse(s)
	if err != nil {
		panic("dtab.MustParse: " + err.Error())
	}
	return d
}

// MustParsePath is ParsePath for texts known to be valid; it panics on
// error.
func MustParsePath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic("dtab.MustParsePath: " + err.Error())
	}
	return p
}

// MustParseTree is ParseTree for texts known to be valid; it panics on
// error.
func MustParseTree(s string) NameTree {
	t, err := ParseTree(s)
	if err != nil {
		panic("dtab.MustParseTree: " + err.Error())
	}
	return t
}

// plain marks the 69 characters that may appear literally in a label.
var plain = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "_:.#$%-" {
		t[c] = true
	}
	return t
}()

// isJavaSpace reports whether r is whitespace for Java's
// Character.isWhitespace (spec/dtab.md §3.4).
func isJavaSpace(r rune) bool {
	switch {
	case r <= 0x20:
		return r == ' ' || (r >= 0x09 && r <= 0x0d) || (r >= 0x1c && r <= 0x1f)
	case r < 0x1680:
		return false
	case r == 0x1680, r >= 0x2000 && r <= 0x2006, r >= 0x2008 && r <= 0x200a,
		r == 0x2028, r == 0x2029, r == 0x205f, r == 0x3000:
		return true
	}
	return false
}

// charLen is the length of the character starting at s[i]: one byte for
// ASCII and for bytes that do not start valid UTF-8.
func charLen(s string, i int) int {
	if s[i] < utf8.RuneSelf {
		return 1
	}
	_, n := utf8.DecodeRuneInString(s[i:])
	return n
}

// Quoted forms of the characters the parser expects, as used in messages.
const (
	wantSlash  = "'/'"
	wantEq     = "'='"
	wantGt     = "'>'"
	wantRParen = "')'"
	wantStar   = "'*'"
	wantX      = "'x'"
	wantLabel  = "label char"
	wantHex    = "hex char"
	wantSimple = "simple"
	wantNumber = "number char"
	wantWeight = "weight"
	wantEnd    = "end of input"
)

// parser is a hand-written recursive-descent parser mirroring Finagle's
// NameTreeParsers, so that error positions and messages agree with it.
// The first error sticks in err; every method returns early once it is set.
type parser struct {
	s     string
	i     int
	err   *ParseError
	depth int
	// elems and pelems are arenas from which path and prefix element slices
	// are cut as capacity-limited windows, so that a whole dtab costs a
	// couple of allocations rather than one per path; appending to a
	// returned Path or Prefix never writes into a neighbour.
	elems  []string
	pelems []PrefixElem
	// Children of Alt and Union nodes are gathered on a stack (nested
	// groups push above and pop back) and then copied into an arena
	// window of exactly the right size.
	altStack, altArena []NameTree
	wStack, wArena     []Weighted[Path]
	// Upper bounds on the Alt children and Union branches of the whole
	// input (each separator adds at most one item and closes at most one
	// group of two), used to size the first arena chunk.
	altHint, wHint int
}

// cut copies items into a capacity-limited window of *arena, starting a
// new chunk (of at least hint elements) when the current one is full.
func cut[E any](arena *[]E, items []E, hint int) []E {
	n := len(items)
	if cap(*arena)-len(*arena) < n {
		*arena = make([]E, 0, max(n, min(hint, 256), 8))
	}
	start := len(*arena)
	*arena = append(*arena, items...)
	return (*arena)[start : start+n : start+n]
}

func newParser(s string) parser {
	// Every element is preceded by a '/', which bounds the arena size.
	n := min(strings.Count(s, "/"), 512)
	return parser{
		s:       s,
		elems:   make([]string, 0, n),
		altHint: 2 * strings.Count(s, "|"),
		wHint:   2 * strings.Count(s, "&"),
	}
}

// failAt records an error at byte offset off, reporting found as the
// offending character.
func (p *parser) failAt(off int, expected, found string) {
	if p.err == nil {
		p.err = &ParseError{Input: p.s, Offset: off, Expected: expected, Found: found}
	}
}

// fail records an error at the current position.
func (p *parser) fail(expected string) {
	found := ""
	if p.i < len(p.s) {
		found = p.s[p.i : p.i+charLen(p.s, p.i)]
	}
	p.failAt(p.i, expected, found)
}

// at reports whether the next character is c.
func (p *parser) at(c byte) bool { return p.i < len(p.s) && p.s[p.i] == c }

// eat consumes c or fails with want (c quoted).
func (p *parser) eat(c byte, want string) bool {
	if p.err != nil {
		return false
	}
	if !p.at(c) {
		p.fail(want)
		return false
	}
	p.i++
	return true
}

// skip consumes whitespace and comments. A '#' seen here starts a comment
// that runs through the next line feed.
func (p *parser) skip() {
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '#':
			if j := strings.IndexByte(p.s[p.i:], '\n'); j >= 0 {
				p.i += j + 1
			} else {
				p.i = len(p.s)
			}
		case c < utf8.RuneSelf:
			if !isJavaSpace(rune(c)) {
				return
			}
			p.i++
		default:
			r, n := utf8.DecodeRuneInString(p.s[p.i:])
			if !isJavaSpace(r) {
				return
			}
			p.i += n
		}
	}
}

// end requires that only whitespace and comments remain.
func (p *parser) end() {
	if p.err != nil {
		return
	}
	p.skip()
	if p.i < len(p.s) {
		p.fail(wantEnd)
	}
}

// labelStart reports whether a label can start at the current position.
func (p *parser) labelStart() bool {
	return p.i < len(p.s) && (plain[p.s[p.i]] || p.s[p.i] == '\\')
}

// label reads one non-empty label: plain characters and \xHH escapes.
func (p *parser) label() string {
	start := p.i
	for p.i < len(p.s) && plain[p.s[p.i]] {
		p.i++
	}
	if !p.at('\\') {
		if p.i == start {
			p.fail(wantLabel)
			return ""
		}
		// Common case: no escapes, the label is a substring of the input.
		return p.s[start:p.i]
	}
	buf := make([]byte, 0, len(p.s)-start)
	buf = append(buf, p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case plain[c]:
			buf = append(buf, c)
			p.i++
			continue
		case c != '\\':
		default:
			p.i++
			if !p.eat('x', wantX) {
				return ""
			}
			hi, lo := p.hex(), p.hex()
			if p.err != nil {
				return ""
			}
			buf = append(buf, hi<<4|lo)
			continue
		}
		break
	}
	return string(buf)
}

// hex reads one hexadecimal digit.
func (p *parser) hex() byte {
	if p.err != nil {
		return 0
	}
	if p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c >= '0' && c <= '9':
			p.i++
			return c - '0'
		case c >= 'a' && c <= 'f':
			p.i++
			return c - 'a' + 10
		case c >= 'A' && c <= 'F':
			p.i++
			return c - 'A' + 10
		}
	}
	p.fail(wantHex)
	return 0
}

// path reads a path, skipping blanks before it.
func (p *parser) path() Path {
	p.skip()
	if !p.eat('/', wantSlash) || !p.labelStart() {
		return nil
	}
	start := len(p.elems)
	for {
		l := p.label()
		if p.err != nil {
			return nil
		}
		p.elems = append(p.elems, l)
		if !p.at('/') {
			break
		}
		p.i++
	}
	end := len(p.elems)
	return Path(p.elems[start:end:end])
}

// prefix reads a dentry prefix, skipping blanks before it.
func (p *parser) prefix() Prefix {
	p.skip()
	if !p.eat('/', wantSlash) || !(p.labelStart() || p.at('*')) {
		return nil
	}
	start := len(p.pelems)
	for {
		if p.at('*') {
			p.i++
			p.pelems = append(p.pelems, PrefixElem{Any: true})
		} else {
			l := p.label()
			if p.err != nil {
				return nil
			}
			p.pelems = append(p.pelems, PrefixElem{Label: l})
		}
		if !p.at('/') {
			break
		}
		p.i++
	}
	end := len(p.pelems)
	return Prefix(p.pelems[start:end:end])
}

// tree reads alternatives separated by '|'.
func (p *parser) tree() NameTree {
	first := p.union()
	p.skip()
	if p.err != nil || !p.at('|') {
		return first
	}
	base := len(p.altStack)
	p.altStack = append(p.altStack, first)
	for p.at('|') {
		p.i++
		t := p.union()
		if p.err != nil {
			return NameTree{}
		}
		p.altStack = append(p.altStack, t)
		p.skip()
	}
	alts := cut(&p.altArena, p.altStack[base:], p.altHint)
	clear(p.altStack[base:]) // drop references held by the scratch stack
	p.altStack = p.altStack[:base]
	return NameTree{Kind: Alt, Alts: alts}
}

// union reads weighted operands separated by '&'. A single operand is
// returned as is, its weight discarded.
func (p *parser) union() NameTree {
	w, first := p.weighted()
	p.skip()
	if p.err != nil || !p.at('&') {
		return first
	}
	base := len(p.wStack)
	p.wStack = append(p.wStack, Weighted[Path]{Weight: w, Tree: first})
	for p.at('&') {
		p.i++
		w, t := p.weighted()
		if p.err != nil {
			return NameTree{}
		}
		p.wStack = append(p.wStack, Weighted[Path]{Weight: w, Tree: t})
		p.skip()
	}
	bs := cut(&p.wArena, p.wStack[base:], p.wHint)
	clear(p.wStack[base:])
	p.wStack = p.wStack[:base]
	return NameTree{Kind: Union, Branches: bs}
}

// weighted reads an operand with an optional "weight *" before it.
func (p *parser) weighted() (float64, NameTree) {
	p.skip()
	w := 1.0
	if p.i < len(p.s) && (p.s[p.i] == '.' || (p.s[p.i] >= '0' && p.s[p.i] <= '9')) {
		w = p.number()
		p.skip()
		p.eat('*', wantStar)
		p.skip()
	}
	if p.err != nil {
		return 0, NameTree{}
	}
	return w, p.simple()
}

// number reads a weight: digits with at most one '.', not '.' alone.
func (p *parser) number() float64 {
	start := p.i
	dot := false
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '.' {
			if dot {
				p.fail(wantNumber)
				return 0
			}
			dot = true
		} else if c < '0' || c > '9' {
			break
		}
		p.i++
	}
	lit := p.s[start:p.i]
	if lit == "." {
		// Finagle reports the dot but marks the character after it.
		p.failAt(p.i, wantWeight, ".")
		return 0
	}
	w, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(w, 0) {
		// Only overflow can get here. Linkerd would accept an infinite
		// weight and print it as "Infinity", which no parser reads back;
		// rejecting it is the one deliberate difference.
		p.failAt(start, "finite weight", lit[:1])
		return 0
	}
	return w
}

// simple reads an operand: a parenthesised tree, a path, '!', '~' or '$'.
func (p *parser) simple() NameTree {
	p.skip()
	if p.err != nil {
		return NameTree{}
	}
	if p.i < len(p.s) {
		switch p.s[p.i] {
		case '(':
			if p.depth >= MaxNesting {
				p.fail("at most " + strconv.Itoa(MaxNesting) + " nested groups; ')'")
				return NameTree{}
			}
			p.i++
			p.depth++
			t := p.tree()
			p.depth--
			p.skip()
			if !p.eat(')', wantRParen) {
				return NameTree{}
			}
			return t
		case '/':
			path := p.path()
			if p.err != nil {
				return NameTree{}
			}
			return NameTree{Kind: Leaf, Value: path}
		case '!':
			p.i++
			return NameTree{Kind: Fail}
		case '~':
			p.i++
			return NameTree{Kind: Neg}
		case '$':
			p.i++
			return NameTree{Kind: Empty}
		}
	}
	p.fail(wantSimple)
	return NameTree{}
}

// dentry reads "prefix => tree"; no blanks are allowed inside "=>".
func (p *parser) dentry() Dentry {
	pfx := p.prefix()
	p.skip()
	p.eat('=', wantEq)
	p.eat('>', wantGt)
	if p.err != nil {
		return Dentry{}
	}
	t := p.tree()
	if p.err != nil {
		return Dentry{}
	}
	return Dentry{Prefix: pfx, Dst: t}
}

// dtab reads dentries separated by ';' with one optional trailing ';'.
func (p *parser) dtab() Dtab {
	var d Dtab
	for {
		p.skip()
		if p.i < len(p.s) {
			if d == nil {
				n := min(strings.Count(p.s[p.i:], ";")+1, 256)
				d = make(Dtab, 0, n)
				p.pelems = make([]PrefixElem, 0, 2*n)
			}
			e := p.dentry()
			if p.err != nil {
				return nil
			}
			d = append(d, e)
			p.skip()
		}
		if !p.at(';') {
			return d
		}
		p.i++
	}
}
