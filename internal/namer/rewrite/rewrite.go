// Package rewrite is the io.l5d.rewrite namer: it matches the looked-up
// path against a pattern and answers with a new path built from the
// captures, which the interpreter then delegates further through the dtab.
//
//	namers:
//	- kind: io.l5d.rewrite
//	  prefix: /portNsSvcToK8s
//	  pattern: "/{port}/{ns}/{svc}"
//	  name: "/k8s/{ns}/{port}/{svc}"
//
// With that config /#/portNsSvcToK8s/http/default/web becomes
// /k8s/default/http/web. As in Linkerd, the pattern matches the leading
// segments and the answer is the name alone: segments after the matched
// ones are dropped. A path the pattern does not match is negative.
// Answers never change.
package rewrite

import (
	"fmt"
	"slices"
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Kind is the namer kind.
const Kind = "io.l5d.rewrite"

func init() {
	config.Register[naming.NamerConfig](Kind, func() naming.NamerConfig { return new(Config) })
}

// Config is the io.l5d.rewrite namer block. Unlike other namers its prefix
// is required.
type Config struct {
	naming.NamerCommon `yaml:",inline"`
	// Pattern is matched against the leading segments of the path: literal
	// segments, "*" (any segment) and {var} captures.
	Pattern config.PathPattern `yaml:"pattern" config:"required"`
	// Name is the path to answer with; {var} refers to a capture.
	Name string `yaml:"name" config:"required"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if strings.Trim(c.Prefix, "/") == "" {
		return config.FieldError("prefix", "io.l5d.rewrite needs a `prefix` (where it is mounted below /#/)")
	}
	if _, err := dtab.ParsePath("/" + strings.Trim(c.Prefix, "/")); err != nil {
		return config.FieldError("prefix", "invalid prefix %q: %v", c.Prefix, err)
	}
	if _, err := compileName(c.Name, c.Pattern); err != nil {
		return config.FieldError("name", "%v", err)
	}
	return nil
}

// NewNamer implements naming.NamerConfig.
func (c *Config) NewNamer(naming.Env) (naming.Namer, error) {
	return New(c.Pattern, c.Name)
}

// Namer is the io.l5d.rewrite namer.
type Namer struct {
	pattern config.PathPattern
	name    []string // template segments
}

// New returns a namer that rewrites paths matching pattern to name.
func New(pattern config.PathPattern, name string) (*Namer, error) {
	segs, err := compileName(name, pattern)
	if err != nil {
		return nil, err
	}
	return &Namer{pattern: pattern, name: segs}, nil
}

// compileName checks a name template: a path whose segments may contain
// {var} references to captures of the pattern.
func compileName(name string, pattern config.PathPattern) ([]string, error) {
	if !strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("name %q must be a path starting with '/'", name)
	}
	for _, v := range config.TemplateVars(name) {
		if !slices.Contains(pattern.Vars(), v) {
			return nil, fmt.Errorf("name %q refers to {%s}, which pattern %q does not capture", name, v, pattern)
		}
	}
	trimmed := strings.Trim(name, "/")
	if trimmed == "" {
		return nil, nil
	}
	segs := strings.Split(trimmed, "/")
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("name %q has an empty segment", name)
		}
		if !strings.Contains(s, "{") {
			// Literal segments must be valid path labels.
			if _, err := dtab.ParsePath("/" + s); err != nil {
				return nil, fmt.Errorf("name %q: segment %q: %v", name, s, err)
			}
		}
	}
	return segs, nil
}

// Lookup implements naming.Namer.
func (n *Namer) Lookup(path dtab.Path) naming.Lookup {
	return watch.Const[watch.Activity[dtab.Tree[naming.Name]]]{V: watch.OkActivity(n.rewrite(path))}
}

func (n *Namer) rewrite(path dtab.Path) dtab.Tree[naming.Name] {
	vars, ok := n.pattern.Match(path)
	if !ok {
		return dtab.NegTree[naming.Name]()
	}
	out := make(dtab.Path, 0, len(n.name))
	for _, s := range n.name {
		e, err := config.Expand(s, vars)
		if err != nil || e == "" {
			// An empty capture cannot make a path element.
			return dtab.NegTree[naming.Name]()
		}
		out = append(out, e)
	}
	return dtab.LeafTree(naming.Name{Path: out})
}
