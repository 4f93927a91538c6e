package routerd

import (
	"fmt"
)

// checkHTTPRouter refuses options of an http router that this version
// accepts in the file but cannot honour where ignoring them would change
// behaviour silently, and returns warnings for options it ignores
// harmlessly.
func checkHTTPRouter(hr *HTTPRouter) (warnings []string, err error) {
	if hr.HTTPAccessLog != "" && hr.HTTPAccessLogRollPolicy != "" && hr.HTTPAccessLogRollPolicy != "never" {
		warnings = append(warnings, "httpAccessLogRollPolicy is not supported yet; the access log is never rolled (use logrotate with copytruncate)")
	}
	if _, perPrefix := forwardsClientCert(&hr.Client, hr.Client.Global.ForwardClientCert); perPrefix {
		warnings = append(warnings, warnPerPrefixXFCC)
	}
	if hr.CompressionLevel > 0 {
		warnings = append(warnings, "compressionLevel is ignored: responses are passed through uncompressed")
	}
	if !hr.StreamingEnabled {
		warnings = append(warnings, "streamingEnabled: false is ignored; bodies are always streamed")
	}
	for i, s := range hr.Servers {
		if s.TimeoutMs > 0 {
			warnings = append(warnings, fmt.Sprintf("servers[%d].timeoutMs is not supported yet; use service.totalTimeoutMs", i))
		}
	}
	return warnings, nil
}

// warnPerPrefixXFCC is the warning for forwardClientCert set in an
// io.l5d.static client entry.
const warnPerPrefixXFCC = "client.configs[].forwardClientCert is not supported per prefix; use kind io.l5d.global (client.forwardClientCert) to add x-forwarded-client-cert"

// Warnings lists, in config order, what `linnet router` warns about at
// startup: per router, the options it accepts but ignores (the checks
// above), then the servers open to rerouting from beyond this host
// (EdgeWarnings). `linnet check` prints the same list, so that a config
// that checks clean also starts without warnings.
func Warnings(c *Config) []string {
	var out []string
	for i, r := range c.Routers {
		var ws []string
		switch hr := r.Value.(type) {
		case *HTTPRouter:
			ws, _ = checkHTTPRouter(hr)
		case *H2Router:
			ws = checkH2Router(hr)
		default:
			continue
		}
		for _, w := range ws {
			out = append(out, fmt.Sprintf("routers[%d] (router %q): %s", i, r.Value.Common().Label, w))
		}
	}
	return append(out, EdgeWarnings(c)...)
}
