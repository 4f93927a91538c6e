// Package dtab implements Linkerd 1.x delegation tables: paths, prefixes,
// name trees, dentries and dtabs; their parsing, canonical printing, the
// name-tree algebra (simplify, eval) and one lookup step of a path against a
// dtab. It does no I/O and imports nothing internal.
//
// Invariants: a Path never holds an empty element; a parsed Tree never holds
// a one-child Alt or Union; Show(Parse(s)) is canonical and Parse(Show(x))
// equals x for every parsed x whose weights have at most two decimals.
// The facts implemented here are in spec/dtab.md.
//
// # Parsing
//
// Parse, ParseDentry, ParsePrefix, ParseTree and ParsePath share one
// hand-written parser that follows Finagle's NameTreeParsers step by step,
// so that what is accepted, and the *ParseError message for what is not
// ("'/' expected but ';' found at '/a => /b;[;]'"), match Linkerd byte for
// byte. The parser is allocation-lean: labels without escapes are
// substrings of the input, and the element and child slices of a whole
// dtab are cut from a few shared arenas as capacity-limited windows (so
// appending to a returned slice never overwrites a neighbour).
//
// Deliberate differences from Linkerd, each on input Linkerd handles badly:
// a weight that overflows to infinity is rejected ("finite weight expected
// ..."); parentheses nest at most MaxNesting deep; an offending non-ASCII
// character is shown whole in messages, never as half a UTF-16 pair.
//
// # Printing
//
// Path.String, Prefix.String, Dentry.String, Dtab.String and ShowTree
// print the canonical text of spec/dtab.md §4. FormatWeight rounds weights
// the way Java's "%.2f" does; FormatWeightJSON prints them like Java's
// Double.toString for the delegator and namerd JSON.
//
// # Trees are values
//
// Trees, paths and dtabs are immutable values by convention: functions here
// never modify their arguments, and results (Lookup, Simplify, Take, Drop,
// Match) may share storage with them. Path.Concat and Dtab.Concat always
// allocate.
//
// # Evaluation
//
// Eval tells a failed subtree from a negative one internally: in an
// alternation, an alternative that fails (not only a literal "!", but also
// e.g. "(! | /a)") stops the fail-over. This is what makes Simplify
// evaluation-preserving, as spec/dtab.md §6.1 requires, and matches the
// bind algorithm of §7.5.
package dtab
