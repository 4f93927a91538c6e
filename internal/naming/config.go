package naming

import (
	"context"
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"log/slog"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Env is what a namer (or interpreter, or transformer) gets from its host
// when it is built.
type Env struct {
	// Ctx is cancelled when the host shuts down; watches started by the
	// namer must stop then.
	Ctx    context.Context
	Logger *slog.Logger
	// Scope is the namer's metrics scope (namer/<prefix>/...).
	Scope telemetry.Scope
	// Namers are the process's configured namers, for a transformer that
	// binds a /#/ path (io.l5d.replace, io.l5d.const); nil where there are
	// none to offer (a namer's own transformers, built while the namers are
	// being mounted).
	Namers []MountedNamer
}

// NamerConfig is the configuration of one entry of a `namers:` list. Each
// kind registers a constructor of its config struct with
// config.Register[naming.NamerConfig](kind, ...); the struct embeds
// NamerCommon and carries the kind's own keys.
type NamerConfig interface {
	// Common returns the keys every namer has.
	Common() *NamerCommon
	// NewNamer builds the namer.
	NewNamer(env Env) (Namer, error)
}

// NamerCommon holds the keys every namer kind accepts.
type NamerCommon struct {
	// Prefix is where the namer is mounted, below /#/. Default: the kind.
	Prefix string `yaml:"prefix"`
	// Experimental is accepted for compatibility (Linkerd gates some kinds on it).
	Experimental bool `yaml:"experimental"`
	// Transformers apply, in order, to every bound name this namer
	// produces (config.md §4.7). The host that mounts the namer applies them.
	Transformers []config.Kinded[TransformerConfig] `yaml:"transformers"`
}

// Common implements NamerConfig.
func (c *NamerCommon) Common() *NamerCommon { return c }

// MountedNamer is a namer with the prefix it is mounted at (/#/<prefix>)
// and the transformers of its `transformers:` key. Interpreters look names
// up through its Lookup, which applies them; Namer stays the namer itself,
// so that its optional interfaces (StateReporter...) remain visible.
type MountedNamer struct {
	Prefix       dtab.Path
	Namer        Namer
	Transformers []Transformer
}

// InterpreterEnv is what an interpreter is built with.
type InterpreterEnv struct {
	Env
	// Namers are the process's configured namers, in configuration order
	// (later ones take precedence, spec/dtab.md §7.3).
	Namers []MountedNamer
	// Label is the router's label (for metrics and namerd namespaces).
	Label string
}

// InterpreterConfig is the config of a router's `interpreter:` block
// (kinds "default", "io.l5d.namerd.http", ...), registered with
// config.Register[naming.InterpreterConfig].
type InterpreterConfig interface {
	NewInterpreter(env InterpreterEnv) (Interpreter, error)
}

// Transformer rewrites the bound names of a bound tree after binding
// (e.g. io.l5d.port, io.l5d.localhost, io.l5d.k8s.daemonset). It wraps a
// bound leaf's Addr with a derived watch.Value and prefixes its ID with the
// transformer's marker (/%/<kind>/...).
type Transformer interface {
	Transform(t BoundTree) BoundTree
}

// TransformerConfig is the config of one `transformers:` entry, registered
// with config.Register[naming.TransformerConfig].
type TransformerConfig interface {
	NewTransformer(env Env) (Transformer, error)
}
