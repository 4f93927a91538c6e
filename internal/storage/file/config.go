package file

import (
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/storage"
)

// Kind is the config kind of this store.
const Kind = "io.linnet.file"

func init() {
	config.Register[storage.Config](Kind, func() storage.Config { return new(Config) })
}

// Config is the io.linnet.file storage block:
//
//	storage:
//	  kind: io.linnet.file
//	  dir: /var/lib/namerd/dtabs
type Config struct {
	storage.Common `yaml:",inline"`
	// Dir is the directory holding the dtabs; it is created if missing.
	Dir string `yaml:"dir" config:"required"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return config.FieldError("dir", "must name a directory")
	}
	return nil
}

// NewStore implements storage.Config.
func (c *Config) NewStore(storage.Env) (storage.Store, error) { return Open(c.Dir) }
