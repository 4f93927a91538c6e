// Package config loads Linkerd-style configuration text (YAML, or JSON when
// the first non-space character is '{') strictly into Go structs.
//
// Invariants:
//   - Every problem is reported as a *Error naming the place
//     (routers[0].identifier.kind) and the line; nothing is silently dropped:
//     unknown keys, duplicate keys and values of the wrong type are errors.
//   - Numeric and boolean fields also take a quoted scalar whose text is a
//     value of their type (port: '4140'), as Linkerd's Jackson-based parser
//     did; coerce.go holds the rule, Raw.Int/Float/Bool expose it.
//   - A field tagged `config:"unsupported"` is a Linkerd 1.x option this
//     version does not implement; setting it is refused with a message that
//     says so, distinct from a typo.
//   - Decoding calls SetDefaults() on a struct before filling it and
//     Validate() error after, so defaults and checks live next to the type.
//   - Polymorphic plug-in points (`kind: ...`) decode through per-interface
//     registries: Register[I] at init, a Kinded[I] field in the schema.
//
// The package has no protocol knowledge and imports nothing internal.
package config
