package client

import (
	"github.com/linnet-mesh/linnet/internal/namerd/remote"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// State implements naming.StateReporter: the bind and addr streams open
// to namerd, in the shape of Linkerd's io.l5d.namerd page ({"bind":
// {path: {dtab: {"state", "watch"}}}, "addr": {id: {"state",
// "watch"}}}); see remote.StateDoc. Linkerd's io.l5d.namerd.http has no
// such page; Linnet serves one with the stream record under "watch".
func (in *Interpreter) State() any {
	return remote.StateDoc(in.bind, in.addr, "addr", "watch")
}

// StatePage implements naming.InterpreterStatePage:
// /<router>/interpreter_state/io.l5d.namerd.http/<namespace>.json.
func (in *Interpreter) StatePage() (kind, name string) {
	return InterpreterKind, in.o.Namespace
}

var _ naming.InterpreterStatePage = (*Interpreter)(nil)
