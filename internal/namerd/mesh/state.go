package mesh

import (
	"github.com/linnet-mesh/linnet/internal/namerd/remote"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// State implements naming.StateReporter: the StreamBoundTree and
// StreamReplicas streams open to namerd, shaped as Linkerd's io.l5d.mesh
// page ({"bind": {path: {dtab: {"state", "watch"}}}, "resolve": {id:
// {"state", "watch"}}}); see remote.StateDoc. Linnet does not stream the
// namespace's dtab, so there is no "dtab" section.
func (in *Interpreter) State() any {
	return remote.StateDoc(in.bind, in.addr, "resolve", "watch")
}

// StatePage implements naming.InterpreterStatePage:
// /<router>/interpreter_state/io.l5d.mesh/<root>.json, the root without
// its leading slash.
func (in *Interpreter) StatePage() (kind, name string) {
	return Kind, in.o.Namespace
}

var _ naming.InterpreterStatePage = (*Interpreter)(nil)
