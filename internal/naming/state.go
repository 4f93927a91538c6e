package naming

// StateReporter is optionally implemented by a Namer or an Interpreter
// that can show what it currently holds (its watches and the values they
// last published) on the admin pages /namer_state/<prefix>.json and
// /<router>/interpreter_state/<kind>/<ns>.json. State returns a value
// that encodes to JSON; it must be a snapshot safe to encode while the
// namer keeps running.
type StateReporter interface {
	State() any
}

// InterpreterStatePage is implemented by an Interpreter whose state is
// served at /<router>/interpreter_state/<kind>/<name>.json, as Linkerd
// 1.x serves its namerd interpreters' (kind io.l5d.namerd, ...; name the
// namerd namespace, or the mesh root without its leading slash).
type InterpreterStatePage interface {
	StateReporter
	StatePage() (kind, name string)
}
