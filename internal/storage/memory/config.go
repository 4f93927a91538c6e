package memory

import (
	"fmt"
	"sort"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/storage"
)

// Kind is the config kind of this store.
const Kind = "io.l5d.inMemory"

func init() {
	config.Register[storage.Config](Kind, func() storage.Config { return new(Config) })
}

// Config is the io.l5d.inMemory storage block:
//
//	storage:
//	  kind: io.l5d.inMemory
//	  namespaces:
//	    default: |
//	      /svc => /#/io.l5d.fs;
type Config struct {
	storage.Common `yaml:",inline"`
	// Namespaces seeds the store: namespace name → dtab text.
	Namespaces map[string]string `yaml:"namespaces"`

	parsed map[string]dtab.Dtab
}

// Validate parses the seed dtabs.
func (c *Config) Validate() error {
	c.parsed = make(map[string]dtab.Dtab, len(c.Namespaces))
	names := make([]string, 0, len(c.Namespaces))
	for ns := range c.Namespaces {
		names = append(names, ns)
	}
	sort.Strings(names)
	for _, ns := range names {
		if err := storage.CheckNamespace(ns); err != nil {
			return config.FieldError("namespaces", "%v", err)
		}
		d, err := dtab.Parse(c.Namespaces[ns])
		if err != nil {
			return config.FieldError("namespaces."+ns, "invalid dtab: %v", err)
		}
		c.parsed[ns] = d
	}
	return nil
}

// NewStore implements storage.Config.
func (c *Config) NewStore(storage.Env) (storage.Store, error) {
	if c.parsed == nil && len(c.Namespaces) > 0 {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", Kind, err)
		}
	}
	return New(c.parsed), nil
}
