// Package dtab implements Linkerd 1.x delegation tables: paths, prefixes,
// name trees, dentries and dtabs; their parsing, canonical printing, the
// name-tree algebra (simplify, eval) and one lookup step of a path against a
// dtab. It does no I/O and imports nothing internal.
//
// Invariants: a Path never holds an empty element; a parsed Tree never holds
// a one-child Alt or Union; Show(Parse(s)) is canonical and Parse(Show(x))
// equals x for every parsed x whose weights have at most two decimals.
// The facts implemented here are in spec/dtab.md.
package dtab
