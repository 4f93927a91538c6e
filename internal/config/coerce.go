package config

import (
	"math"
	"strconv"
	"strings"
)

// Quoted scalars. Linkerd 1.x read its config with Jackson, which turns a
// string into the number or boolean its field wants: `port: '4140'`,
// `sampleRate: "0.5"`, `experimental: 'true'` all loaded, and configs
// templated by Helm often look like that. The decoder accepts the same,
// for every numeric and boolean field, but only text Jackson 2.8/2.9 (the
// versions Linkerd 1.x shipped) accepted and that is a value of the field's
// type:
//
//   - surrounding characters up to U+0020 (spaces, tabs, newlines) are
//     ignored, as Java's String.trim does;
//   - integers are decimal, with an optional sign ('+' too, as
//     Integer.parseInt takes it): "8080", " -1 ", "+5". Leading zeros are
//     decimal ("010" is 10, as in Jackson, though an unquoted 010 is YAML
//     octal). No base prefixes, underscores or fractions ("1.0");
//   - floating-point numbers are decimal, optionally signed, with an
//     optional fraction and exponent: "0.5", ".5", "5.", "+1e-3". Not
//     Java's hexadecimal floats or 'd'/'f' suffixes, and not NaN or
//     Infinity (no number field takes those, quoted or not);
//   - booleans are "true", "True", "false" or "False" (Jackson 2.9's list:
//     not "TRUE", "yes" or "1").
//
// Jackson also read "" and "null" as an absent value; here they are
// errors, like any other text: a quoted empty number is almost always a
// template that expanded to nothing.

// javaTrim strips what Java's String.trim strips: every character up to
// U+0020 at either end.
func javaTrim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// quotedInt returns the decimal integer a quoted scalar holds, normalised
// to an optional '-' and digits without leading zeros ("0" for zero), so
// that strconv parses it in base 10.
func quotedInt(s string) (string, bool) {
	s = javaTrim(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if !isDigits(s) {
		return "", false
	}
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "0", true
	}
	if neg {
		s = "-" + s
	}
	return s, true
}

// quotedFloat returns the decimal number a quoted scalar holds (trimmed;
// see quotedInt).
func quotedFloat(s string) (string, bool) {
	s = javaTrim(s)
	t := s
	if t != "" && (t[0] == '+' || t[0] == '-') {
		t = t[1:]
	}
	mant, exp := t, ""
	if i := strings.IndexAny(t, "eE"); i >= 0 {
		mant, exp = t[:i], t[i+1:]
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		if !isDigits(exp) {
			return "", false
		}
	}
	whole, frac, dot := strings.Cut(mant, ".")
	switch {
	case !dot && !isDigits(whole):
		return "", false
	case dot && (whole != "" && !isDigits(whole) || frac != "" && !isDigits(frac) || whole == "" && frac == ""):
		return "", false
	}
	return s, true
}

// quotedBool returns the boolean a quoted scalar holds.
func quotedBool(s string) (value, ok bool) {
	switch javaTrim(s) {
	case "true", "True":
		return true, true
	case "false", "False":
		return false, true
	}
	return false, false
}

// The scalar readers below are the decoder's single rule for numbers and
// booleans; Raw's Int, Float and Bool expose it to Unmarshalers.

// numErr says why a scalar is not a number: not one at all (numSyntax)
// or one that does not fit (numRange).
type numErr uint8

const (
	numOK numErr = iota
	numSyntax
	numRange
)

// intOf reads n as an int64: a YAML/JSON integer (base prefixes and '_'
// as the YAML resolver allows them) or a quoted decimal integer.
func intOf(n *node) (int64, numErr) {
	text, base, ok := intText(n)
	if !ok {
		return 0, numSyntax
	}
	i, err := strconv.ParseInt(text, base, 64)
	if err != nil {
		return 0, numRange
	}
	return i, numOK
}

// uintOf reads n as a uint64 (see intOf); negative values are out of range.
func uintOf(n *node) (uint64, numErr) {
	text, base, ok := intText(n)
	if !ok {
		return 0, numSyntax
	}
	u, err := strconv.ParseUint(text, base, 64)
	if err != nil {
		return 0, numRange
	}
	return u, numOK
}

func intText(n *node) (text string, base int, ok bool) {
	if n == nil || n.kind != scalarNode {
		return "", 0, false
	}
	switch n.stype {
	case intScalar:
		return strings.ReplaceAll(n.value, "_", ""), 0, true
	case strScalar:
		s, ok := quotedInt(n.value)
		return s, 10, ok
	}
	return "", 0, false
}

// floatOf reads n as a finite float64: a YAML/JSON number or a quoted
// decimal number. Infinities, NaN and numbers too large are out of range.
func floatOf(n *node) (float64, numErr) {
	if n == nil || n.kind != scalarNode {
		return 0, numSyntax
	}
	var f float64
	var err error
	switch n.stype {
	case intScalar, floatScalar:
		f, err = parseFloat(n.value)
	case strScalar:
		s, ok := quotedFloat(n.value)
		if !ok {
			return 0, numSyntax
		}
		f, err = strconv.ParseFloat(s, 64)
	default:
		return 0, numSyntax
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, numRange
	}
	return f, numOK
}

// boolOf reads n as a boolean: a YAML/JSON boolean or a quoted one.
func boolOf(n *node) (value, ok bool) {
	if n == nil || n.kind != scalarNode {
		return false, false
	}
	switch n.stype {
	case boolScalar:
		return strings.EqualFold(n.value, "true"), true
	case strScalar:
		return quotedBool(n.value)
	}
	return false, false
}

// Int returns the value as an integer, by the decoder's rule: a YAML or
// JSON integer, or a quoted decimal integer as Linkerd's parser accepted
// ("2181", " +2181 "). ok is false for anything else, including integers
// beyond int64.
func (r Raw) Int() (v int64, ok bool) {
	i, e := intOf(r.n)
	return i, e == numOK
}

// Float returns the value as a finite number (an integer or a decimal,
// quoted or not), by the decoder's rule.
func (r Raw) Float() (v float64, ok bool) {
	f, e := floatOf(r.n)
	return f, e == numOK
}

// Bool returns the value as a boolean (true or false, or a quoted "true",
// "True", "false" or "False"), by the decoder's rule.
func (r Raw) Bool() (v, ok bool) {
	return boolOf(r.n)
}
