package naming

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// NamerPrefix returns where a configured namer is mounted below /#/, as a
// path text without the leading slash: its `prefix` key, or else its kind
// ("io.l5d.fs" for `kind: io.l5d.fs`).
func NamerPrefix(n config.Kinded[NamerConfig]) string {
	if p := strings.Trim(n.Value.Common().Prefix, "/"); p != "" {
		return p
	}
	return n.Kind
}

// MountNamers builds a `namers:` list, in order, each namer mounted at
// /#/<prefix> with env's context, env's logger naming it, and its metrics
// under root's namer/<prefix>. The Close methods of the namers that have
// one are returned, also with an error, so that the caller can close what
// was built; an error names the entry (namers[i]).
func MountNamers(env Env, root telemetry.Scope, namers []config.Kinded[NamerConfig]) ([]MountedNamer, []func() error, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mounted := make([]MountedNamer, 0, len(namers))
	var closers []func() error
	for i, n := range namers {
		pfx := NamerPrefix(n)
		path, err := dtab.ParsePath("/#/" + pfx)
		if err != nil {
			return nil, closers, fmt.Errorf("namers[%d]: prefix %q: %w", i, pfx, err)
		}
		ne := env
		ne.Logger = log.With("namer", pfx)
		ne.Scope = telemetry.NamerScope(root, pfx)
		nm, err := n.Value.NewNamer(ne)
		if err != nil {
			return nil, closers, fmt.Errorf("namers[%d] (%s): %w", i, n.Kind, err)
		}
		if c, ok := nm.(interface{ Close() error }); ok {
			closers = append(closers, c.Close)
		}
		m := MountedNamer{Prefix: path, Namer: nm}
		for j, k := range n.Value.Common().Transformers {
			if k.Value == nil {
				continue
			}
			t, err := k.Value.NewTransformer(ne)
			if err != nil {
				return nil, closers, fmt.Errorf("namers[%d].transformers[%d] (%s): %w", i, j, k.Kind, err)
			}
			m.Transformers = append(m.Transformers, t)
		}
		mounted = append(mounted, m)
	}
	return mounted, closers, nil
}
