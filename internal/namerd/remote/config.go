package remote

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// This file is the configuration the interpreters share: the `dst` key
// that names namerd, the environment they start in, and the
// failureThreshold block of the two that keep a session open.

// ParseDst checks an interpreter's `dst` key, the name of namerd's
// interface; example (a /$/inet path with the interface's default port)
// tells a user who left it empty what to write.
func ParseDst(dst, example string) (dtab.Path, error) {
	p, err := dtab.ParsePath(dst)
	if err != nil {
		return nil, config.FieldError("dst", "invalid path %q: %v", dst, err)
	}
	if len(p) == 0 {
		return nil, config.FieldError("dst", "must name namerd, e.g. %s", example)
	}
	return p, nil
}

// Env returns the context an interpreter's watches live in and its
// logger. Tests and tools may build an interpreter without either: it
// then lives until the process ends and logs nothing.
func Env(env naming.InterpreterEnv) (context.Context, *slog.Logger) {
	ctx, log := env.Ctx, env.Logger
	if ctx == nil {
		ctx = context.Background()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return ctx, log
}

// DialDst returns a Dialer of namerd at dst. namerd's own address is
// resolved like any name, with the router's namers and the /$/ system
// namers, so that a router can find namerd through service discovery.
func DialDst(ctx context.Context, namers []naming.MountedNamer, dst dtab.Path) func(ctx context.Context) (net.Conn, error) {
	return Dialer(ctx, naming.NewInterpreter(namers).Bind(nil, dst))
}

// FailureThreshold is the `failureThreshold` block's detector of a dead
// session to namerd: a ping every minPeriodMs, and a session whose ping
// goes unanswered for closeTimeoutMs is closed and dialled again. Each
// interpreter embeds it inline with its own defaults (Linkerd's differ).
type FailureThreshold struct {
	MinPeriodMs    int `yaml:"minPeriodMs"`
	CloseTimeoutMs int `yaml:"closeTimeoutMs"`
}

// Validate implements config.Validator.
func (f *FailureThreshold) Validate() error {
	if f.MinPeriodMs <= 0 {
		return config.FieldError("minPeriodMs", "must be positive, got %d", f.MinPeriodMs)
	}
	if f.CloseTimeoutMs <= 0 {
		return config.FieldError("closeTimeoutMs", "must be positive, got %d", f.CloseTimeoutMs)
	}
	return nil
}

// PingEvery is the pause between pings.
func (f *FailureThreshold) PingEvery() time.Duration {
	return time.Duration(f.MinPeriodMs) * time.Millisecond
}

// PingTimeout is how long a ping may go unanswered.
func (f *FailureThreshold) PingTimeout() time.Duration {
	return time.Duration(f.CloseTimeoutMs) * time.Millisecond
}
