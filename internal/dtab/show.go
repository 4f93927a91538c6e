package dtab

import (
	"math"
	"strconv"
	"strings"
)

// ShowTree returns the canonical text of a name tree (spec/dtab.md §4):
// "|" and "&" surrounded by single spaces, parentheses only where needed
// (and around nested groups, which the parser does not flatten), weights
// other than exactly 1.0 printed with FormatWeight as "<weight>*operand".
// A one-child Alt or Union prints as its child; a zero-child one prints as
// "~", to which it is evaluation-equivalent.
func ShowTree(t NameTree) string {
	var b strings.Builder
	showTop(&b, t, writePath)
	return b.String()
}

// ShowTreeFunc is ShowTree for trees of any leaf type, printing each leaf
// with leaf.
func ShowTreeFunc[T any](t Tree[T], leaf func(T) string) string {
	var b strings.Builder
	showTop(&b, t, func(b *strings.Builder, v T) { b.WriteString(leaf(v)) })
	return b.String()
}

// String returns the canonical text of the dentry: prefix, "=>", tree,
// without spaces around "=>".
func (d Dentry) String() string {
	var b strings.Builder
	writeDentry(&b, d)
	return b.String()
}

// String returns the canonical text of the dtab: its dentries joined with
// ";", no spaces around "=>" or ";", no trailing ";". The empty dtab
// prints as "".
func (d Dtab) String() string {
	var b strings.Builder
	b.Grow(64 * len(d)) // a typical dentry; the builder grows if needed
	for i, e := range d {
		if i > 0 {
			b.WriteByte(';')
		}
		writeDentry(&b, e)
	}
	return b.String()
}

func writeDentry(b *strings.Builder, d Dentry) {
	writePrefix(b, d.Prefix)
	b.WriteString("=>")
	showTop(b, d.Dst, writePath)
}

// The three printing contexts of spec/dtab.md §4.

func showTop[T any](b *strings.Builder, t Tree[T], leaf func(*strings.Builder, T)) {
	switch {
	case t.Kind == Alt && len(t.Alts) >= 2:
		for i, c := range t.Alts {
			if i > 0 {
				b.WriteString(" | ")
			}
			showItem(b, c, leaf)
		}
	case t.Kind == Alt && len(t.Alts) == 1:
		showTop(b, t.Alts[0], leaf)
	case t.Kind == Union && len(t.Branches) == 1:
		showTop(b, t.Branches[0].Tree, leaf)
	default:
		showItem(b, t, leaf)
	}
}

func showItem[T any](b *strings.Builder, t Tree[T], leaf func(*strings.Builder, T)) {
	switch {
	case t.Kind == Union && len(t.Branches) >= 2:
		for i, w := range t.Branches {
			if i > 0 {
				b.WriteString(" & ")
			}
			if w.Weight != 1 {
				var buf [32]byte
				b.Write(appendWeight(buf[:0], w.Weight))
				b.WriteByte('*')
			}
			showOperand(b, w.Tree, leaf)
		}
	case t.Kind == Union && len(t.Branches) == 1:
		showItem(b, t.Branches[0].Tree, leaf)
	case t.Kind == Alt && len(t.Alts) == 1:
		showItem(b, t.Alts[0], leaf)
	default:
		showOperand(b, t, leaf)
	}
}

func showOperand[T any](b *strings.Builder, t Tree[T], leaf func(*strings.Builder, T)) {
	switch t.Kind {
	case Leaf:
		leaf(b, t.Value)
	case Fail:
		b.WriteByte('!')
	case Neg:
		b.WriteByte('~')
	case Empty:
		b.WriteByte('$')
	case Alt, Union:
		n := len(t.Alts)
		if t.Kind == Union {
			n = len(t.Branches)
		}
		switch {
		case n == 0:
			b.WriteByte('~')
		case n == 1 && t.Kind == Alt:
			showOperand(b, t.Alts[0], leaf)
		case n == 1:
			showOperand(b, t.Branches[0].Tree, leaf)
		default:
			b.WriteByte('(')
			showTop(b, t, leaf)
			b.WriteByte(')')
		}
	default:
		b.WriteString("<invalid kind ")
		b.WriteString(strconv.Itoa(int(t.Kind)))
		b.WriteByte('>')
	}
}

// String returns the name of the kind ("Neg", "Fail", ...).
func (k Kind) String() string {
	switch k {
	case Neg:
		return "Neg"
	case Fail:
		return "Fail"
	case Empty:
		return "Empty"
	case Leaf:
		return "Leaf"
	case Alt:
		return "Alt"
	case Union:
		return "Union"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// FormatWeight prints a union weight the way Linkerd does (Java
// String.format("%.2f")): exactly two decimals, no exponent, rounding
// half-up applied to the shortest decimal representation of w, so 2.675
// prints as "2.68" and 0.125 as "0.13" (strconv's own rounding of the
// binary value would give "2.67" and "0.12"). NaN and infinities print as
// Java does: "NaN", "Infinity", "-Infinity".
func FormatWeight(w float64) string {
	var buf [32]byte
	return string(appendWeight(buf[:0], w))
}

func appendWeight(dst []byte, w float64) []byte {
	switch {
	case math.IsNaN(w):
		return append(dst, "NaN"...)
	case math.IsInf(w, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(w, -1):
		return append(dst, "-Infinity"...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, w, 'f', -1, 64)
	digits := start // first digit, after any sign
	if dst[digits] == '-' {
		digits++
	}
	dot := -1
	for i := digits; i < len(dst); i++ {
		if dst[i] == '.' {
			dot = i
			break
		}
	}
	if dot < 0 {
		return append(dst, ".00"...)
	}
	frac := len(dst) - dot - 1
	if frac <= 2 {
		for ; frac < 2; frac++ {
			dst = append(dst, '0')
		}
		return dst
	}
	up := dst[dot+3] >= '5'
	dst = dst[:dot+3]
	if !up {
		return dst
	}
	// Add one unit in the last place, carrying left over the dot.
	for i := len(dst) - 1; i >= digits; i-- {
		switch dst[i] {
		case '.':
			continue
		case '9':
			dst[i] = '0'
			continue
		default:
			dst[i]++
			return dst
		}
	}
	// Carry out of the leading digit: 99.996 -> 100.00.
	dst = append(dst, 0)
	copy(dst[digits+1:], dst[digits:])
	dst[digits] = '1'
	return dst
}

// FormatWeightJSON prints a weight as a JSON number the way Java's
// Double.toString does (spec/dtab.md §10.4): "1.0", "3.0", "0.9", "0.25";
// shortest round-trip digits, always with a fraction, and scientific
// notation ("1.0E7", "1.0E-4") outside [1e-3, 1e7). JSON has no NaN or
// infinity; those print as the quoted strings Jackson writes by default
// ("\"NaN\"", "\"Infinity\"", "\"-Infinity\"").
func FormatWeightJSON(w float64) string {
	switch {
	case math.IsNaN(w):
		return `"NaN"`
	case math.IsInf(w, 1):
		return `"Infinity"`
	case math.IsInf(w, -1):
		return `"-Infinity"`
	}
	if a := math.Abs(w); a == 0 || (a >= 1e-3 && a < 1e7) {
		s := strconv.FormatFloat(w, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(w, 'E', -1, 64) // e.g. "1.5E+07", "1E-04"
	e := strings.IndexByte(s, 'E')
	mant, exp := s[:e], s[e+1:]
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	neg := exp[0] == '-'
	exp = strings.TrimLeft(exp[1:], "0")
	if neg {
		exp = "-" + exp
	}
	return mant + "E" + exp
}
