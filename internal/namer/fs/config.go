package fs

import (
	"strings"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// Kind is the namer kind.
const Kind = "io.l5d.fs"

func init() {
	config.Register[naming.NamerConfig](Kind, func() naming.NamerConfig { return new(Config) })
}

// Config is the io.l5d.fs namer block:
//
//	namers:
//	- kind: io.l5d.fs
//	  rootDir: disco      # relative to the working directory
type Config struct {
	naming.NamerCommon `yaml:",inline"`
	// RootDir is the directory whose files are the names.
	RootDir string `yaml:"rootDir" config:"required"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.RootDir) == "" {
		return config.FieldError("rootDir", "must not be empty")
	}
	if _, err := mountPrefix(c.Prefix); err != nil {
		return config.FieldError("prefix", "%v", err)
	}
	return nil
}

// NewNamer implements naming.NamerConfig.
func (c *Config) NewNamer(env naming.Env) (naming.Namer, error) {
	p, err := mountPrefix(c.Prefix)
	if err != nil {
		return nil, err
	}
	return New(c.RootDir, env, WithPrefix(p))
}

// mountPrefix returns /#/<prefix>, the prefix defaulting to the kind.
func mountPrefix(prefix string) (dtab.Path, error) {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		prefix = Kind
	}
	p, err := dtab.ParsePath("/" + prefix)
	if err != nil {
		return nil, err
	}
	return dtab.Path{"#"}.Concat(p), nil
}
