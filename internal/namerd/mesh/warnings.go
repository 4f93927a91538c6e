package mesh

import "github.com/linnet-mesh/linnet/internal/namerd"

// ConfigWarnings implements namerd.ConfigWarner: Linkerd's h2AccessLog*
// keys are accepted so that its namerd.yaml files load, but no access log
// is written.
func (c *InterfaceConfig) ConfigWarnings() []string {
	if c.H2AccessLog == "" {
		return nil
	}
	return []string{"h2AccessLog is not supported yet for the io.l5d.mesh interface; no access log is written"}
}

var _ namerd.ConfigWarner = (*InterfaceConfig)(nil)
