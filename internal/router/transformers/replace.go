package transformers

import (
	"fmt"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// ReplaceConfig is io.l5d.replace: every bound name of a binding is
// replaced by what `path` binds to, while negative, empty and failed
// results stay as they are (a name that does not exist still does not).
//
//	transformers:
//	- kind: io.l5d.replace
//	  path: /$/inet/127.0.0.1/4141
//
// Linkerd 1's semantics, kept here: `path` is bound once, with an empty
// dtab; each leaf of the input tree becomes that whole bound tree (Alt
// and Union structure and weights around the leaves are kept); each bound
// name of the replacement gets the id /%/io.l5d.replace followed by the
// whole of `path` (residual included, as Linkerd does) and keeps the
// residual that binding `path` left.
//
// `path` is either a system path under /$/ (/$/inet, /$/fixedinet,
// /$/nil, /$/fail, ...), bound as above, or a path under /#/<prefix>/...
// bound, live, through the process's namers (`namers:`, with their
// prefixes and their own transformers), as Linkerd binds it through its
// global interpreter of the configured namers, whatever the router's
// interpreter (namerd's included):
//
//	transformers:
//	- kind: io.l5d.replace
//	  path: /#/io.l5d.k8s/default/http/linkerd
//
// A /#/ path becomes one bound name, id /%/io.l5d.replace followed by
// `path`, whose address set follows the namer's answer (see bindLive);
// a prefix no configured namer is mounted at is a startup error.
type ReplaceConfig struct {
	// Path is what every bound name is replaced by (required).
	Path string `yaml:"path" config:"required"`
}

// Validate implements config.Validator.
func (c *ReplaceConfig) Validate() error { _, err := transformerPath(c.Path); return err }

// NewTransformer implements naming.TransformerConfig.
func (c *ReplaceConfig) NewTransformer(env naming.Env) (naming.Transformer, error) {
	repl, err := bindPath("io.l5d.replace", c.Path, env.Namers)
	if err != nil {
		return nil, err
	}
	return replaceTransformer{repl: repl}, nil
}

type replaceTransformer struct{ repl naming.BoundTree }

// Transform implements naming.Transformer.
func (r replaceTransformer) Transform(t naming.BoundTree) naming.BoundTree {
	return dtab.FlatMap(t, func(*naming.Bound) naming.BoundTree { return r.repl })
}

// ConstConfig is io.l5d.const: whatever the binding, including a
// negative or failed one, the result is what `path` binds to.
//
//	transformers:
//	- kind: io.l5d.const
//	  path: /$/inet/127.0.0.1/8080
//
// `path` is bound as for io.l5d.replace (see ReplaceConfig), a /$/ path
// once at startup, a /#/ path live through the process's namers, with
// ids /%/io.l5d.const followed by `path`.
type ConstConfig struct {
	// Path is the constant result (required).
	Path string `yaml:"path" config:"required"`
}

// Validate implements config.Validator.
func (c *ConstConfig) Validate() error { _, err := transformerPath(c.Path); return err }

// NewTransformer implements naming.TransformerConfig.
func (c *ConstConfig) NewTransformer(env naming.Env) (naming.Transformer, error) {
	t, err := bindPath("io.l5d.const", c.Path, env.Namers)
	if err != nil {
		return nil, err
	}
	return constTransformer{t: t}, nil
}

type constTransformer struct{ t naming.BoundTree }

// Transform implements naming.Transformer.
func (c constTransformer) Transform(naming.BoundTree) naming.BoundTree { return c.t }

// transformerPath parses the `path` of io.l5d.replace or io.l5d.const.
func transformerPath(text string) (dtab.Path, error) {
	if strings.TrimSpace(text) == "" {
		return nil, config.FieldError("path", "must not be empty")
	}
	p, err := dtab.ParsePath(text)
	if err != nil {
		return nil, config.FieldError("path", "%q is not a path: %v", text, err)
	}
	switch {
	case len(p) >= 2 && (p[0] == "$" || p[0] == "#"):
		return p, nil
	case len(p) == 1 && (p[0] == "$" || p[0] == "#"):
		return nil, config.FieldError("path", "%q names no namer; write e.g. /$/inet/127.0.0.1/4141 or /#/io.l5d.fs/web", text)
	}
	return nil, config.FieldError("path", "%q is bound with an empty dtab, so it can only be a system path such as /$/inet/127.0.0.1/4141 or a namer path such as /#/io.l5d.fs/web", text)
}

// bindPath binds the `path` of io.l5d.replace or io.l5d.const: a /$/
// path once, now (bindConst), a /#/ path live through namers (bindLive).
func bindPath(kind, text string, namers []naming.MountedNamer) (naming.BoundTree, error) {
	p, err := transformerPath(text)
	if err != nil {
		return naming.BoundTree{}, fmt.Errorf("%s: %w", kind, err)
	}
	if p[0] == "$" {
		return bindConst(kind, text)
	}
	b, err := bindLive(kind, text, p, namers)
	if err != nil {
		return naming.BoundTree{}, err
	}
	return dtab.LeafTree(b), nil
}

// bindConst binds text (a /$/ path) once, with an empty dtab, and marks
// every bound name of the result with /%/<kind> + path. The system namers
// answer at once and never change their answer (only the address sets of
// DNS names do, through their live Addr values), so the tree is built
// here, at startup, and an unknown /$/ namer is a startup error.
func bindConst(kind, text string) (naming.BoundTree, error) {
	p, err := transformerPath(text)
	if err != nil {
		return naming.BoundTree{}, fmt.Errorf("%s: %w", kind, err)
	}
	act := naming.NewInterpreter(nil).Bind(nil, p).Get()
	switch act.State {
	case watch.Ok:
	case watch.Failed:
		return naming.BoundTree{}, fmt.Errorf("%s: %w", kind, config.FieldError("path", "%q does not bind: %v", text, act.Err))
	default:
		return naming.BoundTree{}, fmt.Errorf("%s: %w", kind, config.FieldError("path", "%q did not bind at startup", text))
	}
	id := dtab.Path{"%", kind}.Concat(p)
	return dtab.Map(act.Value, func(b *naming.Bound) *naming.Bound {
		if b == nil {
			return nil
		}
		return &naming.Bound{ID: id, Residual: b.Residual, Addr: b.Addr}
	}), nil
}

var (
	_ naming.TransformerConfig = (*ReplaceConfig)(nil)
	_ naming.TransformerConfig = (*ConstConfig)(nil)
)
