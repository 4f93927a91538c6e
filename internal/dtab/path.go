package dtab

import "strings"

const hexDigits = "0123456789abcdef"

// elemLen is the printed length of one path element: the element itself
// when every byte is plain, otherwise four characters per byte.
func elemLen(e string) int {
	for i := 0; i < len(e); i++ {
		if !plain[e[i]] {
			return 4 * len(e)
		}
	}
	return len(e)
}

// writeElem prints one path element (spec/dtab.md §3.3): as is when every
// byte is plain, otherwise every byte as \xHH with lowercase hex.
func writeElem(b *strings.Builder, e string) {
	if elemLen(e) == len(e) {
		b.WriteString(e)
		return
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		b.WriteString(`\x`)
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
}

// writePath prints p ("/" when empty).
func writePath(b *strings.Builder, p Path) {
	if len(p) == 0 {
		b.WriteByte('/')
		return
	}
	for _, e := range p {
		b.WriteByte('/')
		writeElem(b, e)
	}
}

// pathLen is the printed length of p.
func pathLen(p Path) int {
	n := 0
	for _, e := range p {
		n += 1 + elemLen(e)
	}
	return max(n, 1)
}

// String returns the canonical text of p (spec/dtab.md §3.3): "/" for the
// empty path; elements made only of plain characters print as they are,
// any other element prints every one of its bytes as \xHH.
// ParsePath(p.String()) always equals p, provided no element is empty.
func (p Path) String() string {
	var b strings.Builder
	b.Grow(pathLen(p))
	writePath(&b, p)
	return b.String()
}

// Equal reports whether p and q have the same elements, byte for byte.
// A nil Path equals an empty one.
func (p Path) Equal(q Path) bool {
	if len(p) != len(q) {
		return false
	}
	for i := range p {
		if p[i] != q[i] {
			return false
		}
	}
	return true
}

// HasPrefix reports whether q is a prefix of p, element by element
// (never character by character: /svc is not a prefix of /svcx).
func (p Path) HasPrefix(q Path) bool {
	return len(q) <= len(p) && p[:len(q)].Equal(q)
}

// Concat returns p followed by q in a newly allocated slice: the result
// never shares storage with p or q.
func (p Path) Concat(q Path) Path {
	if len(p)+len(q) == 0 {
		return nil
	}
	r := make(Path, len(p)+len(q))
	copy(r, p)
	copy(r[len(p):], q)
	return r
}

// Take returns the first n elements of p (all of them if n > len(p), none
// if n < 0). The result shares p's storage but has no spare capacity, so
// appending to it never writes into p.
func (p Path) Take(n int) Path {
	n = min(max(n, 0), len(p))
	return p[:n:n]
}

// Drop returns p without its first n elements (empty if n >= len(p), p if
// n < 0). The result shares p's storage.
func (p Path) Drop(n int) Path {
	n = min(max(n, 0), len(p))
	return p[n:]
}

// String returns the canonical text of the prefix: like Path.String, with
// wildcard elements printed as "*". A literal label "*" prints as \x2a.
func (x Prefix) String() string {
	var b strings.Builder
	b.Grow(prefixLen(x))
	writePrefix(&b, x)
	return b.String()
}

func prefixLen(x Prefix) int {
	n := 0
	for _, e := range x {
		if e.Any {
			n += 2
		} else {
			n += 1 + elemLen(e.Label)
		}
	}
	return max(n, 1)
}

func writePrefix(b *strings.Builder, x Prefix) {
	if len(x) == 0 {
		b.WriteByte('/')
		return
	}
	for _, e := range x {
		b.WriteByte('/')
		if e.Any {
			b.WriteByte('*')
		} else {
			writeElem(b, e.Label)
		}
	}
}

// Equal reports whether x and y have the same elements.
func (x Prefix) Equal(y Prefix) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// Match reports whether the prefix matches p (spec/dtab.md §5): p has at
// least len(x) elements and each prefix element is a wildcard or equals
// the corresponding element of p. On a match, rest is p without the
// matched elements (elements matched by "*" are consumed); it shares p's
// storage but has no spare capacity. The empty prefix matches every path.
func (x Prefix) Match(p Path) (rest Path, ok bool) {
	if len(x) > len(p) {
		return nil, false
	}
	for i, e := range x {
		if !e.Any && e.Label != p[i] {
			return nil, false
		}
	}
	return p[len(x):len(p):len(p)], true
}

// PrefixOf returns the prefix made of p's elements as literal labels.
func PrefixOf(p Path) Prefix {
	if len(p) == 0 {
		return nil
	}
	x := make(Prefix, len(p))
	for i, e := range p {
		x[i] = PrefixElem{Label: e}
	}
	return x
}
