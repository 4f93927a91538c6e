package routerd

import (
	"strings"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/router"
)

// interpreterStatePath is where a router's interpreter state is served,
// as in Linkerd 1.x: /<router label>/interpreter_state/<kind>/<name>.json
// (name is the namerd namespace, or the mesh root without its leading
// slash).
func interpreterStatePath(label, kind, name string) string {
	return "/" + label + "/interpreter_state/" + kind + "/" + strings.TrimPrefix(name, "/") + ".json"
}

// mountInterpreterStatePages registers the state page of every router
// whose interpreter reports one (the namerd-backed interpreters). Other
// paths under /<router>/interpreter_state/ are the admin's 404; methods
// other than GET and HEAD get 405.
func mountInterpreterStatePages(adm *admin.Server, rts []*router.Router) {
	for _, rt := range rts {
		if p, ok := rt.Interpreter().(naming.InterpreterStatePage); ok {
			kind, name := p.StatePage()
			adm.Handle(interpreterStatePath(rt.Label(), kind, name), admin.JSONState(p.State))
		}
	}
}
