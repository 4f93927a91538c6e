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
	if hr.Client.Kind != PolicyStatic && hr.Client.Global.ForwardClientCert {
		warnings = append(warnings, "client.forwardClientCert is not supported yet; no x-forwarded-client-cert header is added")
	}
	if hr.CompressionLevel > 0 {
		warnings = append(warnings, "compressionLevel is ignored: responses are passed through uncompressed")
	}
	if !hr.StreamingEnabled {
		warnings = append(warnings, "streamingEnabled: false is ignored; bodies are always streamed")
	}
	for i, s := range hr.Servers {
		if s.AddForwardedHeader != nil {
			warnings = append(warnings, fmt.Sprintf("servers[%d].addForwardedHeader is not supported yet; no Forwarded header is added", i))
		}
		if s.TimestampHeader != "" {
			warnings = append(warnings, fmt.Sprintf("servers[%d].timestampHeader is not supported yet", i))
		}
		if s.TimeoutMs > 0 {
			warnings = append(warnings, fmt.Sprintf("servers[%d].timeoutMs is not supported yet; use service.totalTimeoutMs", i))
		}
	}
	return warnings, nil
}
