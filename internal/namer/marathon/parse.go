package marathon

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// The parts of Marathon's v2 JSON the namer reads; everything else is
// ignored, so newer Marathons with more fields parse the same.

type appsDoc struct {
	Apps *[]struct {
		ID string `json:"id"`
	} `json:"apps"`
}

type appDoc struct {
	App *appJSON `json:"app"`
}

type appJSON struct {
	ID           string            `json:"id"`
	Tasks        []taskJSON        `json:"tasks"`
	HealthChecks []json.RawMessage `json:"healthChecks"`
	// IPAddress is set for apps with an IP per task (Mesos networking):
	// tasks then have ipAddresses and no host ports, and the port is the
	// first discovery port.
	IPAddress *struct {
		Discovery *struct {
			Ports []struct {
				Number int `json:"number"`
			} `json:"ports"`
		} `json:"discovery"`
	} `json:"ipAddress"`
}

type taskJSON struct {
	ID          string `json:"id"`
	Host        string `json:"host"`
	Ports       []int  `json:"ports"`
	State       string `json:"state"`
	IPAddresses []struct {
		IPAddress string `json:"ipAddress"`
	} `json:"ipAddresses"`
	HealthCheckResults *[]struct {
		Alive *bool `json:"alive"`
	} `json:"healthCheckResults"`
}

// ParseApps decodes the answer of GET /v2/apps into the app ids, as paths
// (/group/app → [group app]). Ids that are not valid paths are skipped
// (Marathon allows only lower-case letters, digits, '-' and '.' in them);
// a document without an "apps" list is an error, so that a proxy's stray
// {} never reads as "every app is gone".
func ParseApps(b []byte) ([]dtab.Path, error) {
	var d appsDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("GET /v2/apps: not Marathon's JSON: %v", err)
	}
	if d.Apps == nil {
		return nil, fmt.Errorf(`GET /v2/apps: the answer has no "apps" list`)
	}
	ids := make([]dtab.Path, 0, len(*d.Apps))
	for _, a := range *d.Apps {
		if p, ok := appPath(a.ID); ok {
			ids = append(ids, p)
		}
	}
	return ids, nil
}

// appPath reads an app id as a path: "/a/b" (or "a/b") → [a b].
func appPath(id string) (dtab.Path, bool) {
	id = strings.Trim(id, "/")
	if id == "" {
		return nil, false
	}
	p, err := dtab.ParsePath("/" + id)
	if err != nil || len(p) == 0 {
		return nil, false
	}
	return p, true
}

// Endpoint is one task's host (a name or an IP literal) and port.
type Endpoint struct {
	Host string
	Port int
}

// ParseApp decodes the answer of GET /v2/apps/<id>?embed=app.tasks into
// the endpoints of its tasks, as Linkerd reads them: a task's host and its
// first port, or, for a task without host ports, its first IP address and
// the app's first discovery port; tasks with neither are skipped. Tasks
// whose state is known and is not TASK_RUNNING (staging, starting,
// killing, unreachable…) are skipped. With useHealthCheck, a task of an
// app with health checks is kept only when it has a result for each check
// and every result is alive.
func ParseApp(b []byte, useHealthCheck bool) ([]Endpoint, error) {
	var d appDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("not Marathon's JSON: %v", err)
	}
	if d.App == nil {
		return nil, fmt.Errorf(`the answer has no "app" object`)
	}
	app := d.App
	discoveryPort := 0
	if ip := app.IPAddress; ip != nil && ip.Discovery != nil && len(ip.Discovery.Ports) > 0 {
		discoveryPort = ip.Discovery.Ports[0].Number
	}
	out := make([]Endpoint, 0, len(app.Tasks))
	for _, t := range app.Tasks {
		if t.State != "" && t.State != "TASK_RUNNING" {
			continue
		}
		if useHealthCheck && !healthy(t, len(app.HealthChecks)) {
			continue
		}
		var e Endpoint
		switch {
		case t.Host != "" && len(t.Ports) > 0:
			e = Endpoint{Host: t.Host, Port: t.Ports[0]}
		case len(t.IPAddresses) > 0 && t.IPAddresses[0].IPAddress != "" && discoveryPort != 0:
			e = Endpoint{Host: t.IPAddresses[0].IPAddress, Port: discoveryPort}
		default:
			continue
		}
		if e.Port < 1 || e.Port > 65535 {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// healthy reports whether a task passes its app's checks nChecks.
func healthy(t taskJSON, nChecks int) bool {
	if nChecks == 0 {
		return true // nothing to pass
	}
	if t.HealthCheckResults == nil || len(*t.HealthCheckResults) < nChecks {
		return false // not checked yet (Marathon: not healthy)
	}
	for _, r := range *t.HealthCheckResults {
		if r.Alive == nil || !*r.Alive {
			return false
		}
	}
	return true
}
