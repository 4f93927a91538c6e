package thrift

import (
	"github.com/linnet-mesh/linnet/internal/namerd/remote"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// State implements naming.StateReporter: the bind and addr long polls
// running against namerd, shaped as Linkerd's io.l5d.namerd page
// ({"bind": {path: {dtab: {"state", "poll"}}}, "addr": {id: {"state",
// "poll"}}}); see remote.StateDoc.
func (in *Interpreter) State() any {
	return remote.StateDoc(in.bind, in.addr, "addr", "poll")
}

// StatePage implements naming.InterpreterStatePage:
// /<router>/interpreter_state/io.l5d.namerd/<namespace>.json.
func (in *Interpreter) StatePage() (kind, name string) {
	return InterpreterKind, in.o.Namespace
}

var _ naming.InterpreterStatePage = (*Interpreter)(nil)
