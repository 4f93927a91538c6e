package namerd

import (
	"fmt"
	"strings"

	"github.com/linnet-mesh/linnet/internal/namerd/thrift"
)

// ConfigWarner is implemented by interface configs that accept options
// they do not apply (Linkerd keys kept so that its namerd.yaml files
// load): ConfigWarnings names each one the config sets, and says what
// happens instead.
type ConfigWarner interface {
	ConfigWarnings() []string
}

// Warnings lists, in config order, the options of a namerd.yaml that this
// version accepts but does not apply. namerd logs them at startup and
// `linnet check` prints them, as routerd.Warnings does for linkerd.yaml.
func Warnings(c *Config) []string {
	var out []string
	for i, ifc := range c.Interfaces {
		var ws []string
		if t, ok := ifc.Value.(*ThriftInterfaceConfig); ok {
			ws = thriftWarnings(&t.InterfaceConfig)
		}
		if w, ok := ifc.Value.(ConfigWarner); ok {
			ws = append(ws, w.ConfigWarnings()...)
		}
		for _, w := range ws {
			out = append(out, fmt.Sprintf("interfaces[%d] (%s): %s", i, ifc.Kind, w))
		}
	}
	return out
}

// thriftWarnings: the thrift interface keeps every observation a router
// is waiting on, so the active capacities of `cache` bound nothing.
func thriftWarnings(c *thrift.InterfaceConfig) []string {
	if c.Cache == nil {
		return nil
	}
	var defaults thrift.CacheConfig
	defaults.SetDefaults()
	var keys []string
	if c.Cache.BindingCacheActive != defaults.BindingCacheActive {
		keys = append(keys, "cache.bindingCacheActive")
	}
	if c.Cache.AddrCacheActive != defaults.AddrCacheActive {
		keys = append(keys, "cache.addrCacheActive")
	}
	if len(keys) == 0 {
		return nil
	}
	verb := "is"
	if len(keys) > 1 {
		verb = "are"
	}
	return []string{fmt.Sprintf("%s %s ignored: every observation a router is waiting on is kept (the inactive capacities and TTLs apply)", strings.Join(keys, ", "), verb)}
}
