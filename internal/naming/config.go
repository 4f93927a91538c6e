package naming

import (
	"context"
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
}

// Common implements NamerConfig.
func (c *NamerCommon) Common() *NamerCommon { return c }
