package mesh

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// RemoteDtab reads the dtab namerd holds for the interpreter's namespace
// with the Delegator service's GetDtab, over the interpreter's
// connection. It returns by the time ctx ends. The router's admin page
// shows it.
func (in *Interpreter) RemoteDtab(ctx context.Context) (dtab.Dtab, error) {
	var rsp DtabRsp
	if err := in.conn.Invoke(ctx, MethodGetDtab, &DtabReq{Root: in.root}, &rsp, callCodec); err != nil {
		if status.Code(err) == codes.NotFound {
			return nil, fmt.Errorf("namerd has no dtab namespace %q", in.o.Namespace)
		}
		return nil, fmt.Errorf("namerd: %s", status.Convert(err).Message())
	}
	if rsp.Dtab == nil {
		return nil, errors.New("namerd sent no dtab")
	}
	d, err := dtabFromWire(rsp.Dtab.Dtab)
	if err != nil {
		return nil, fmt.Errorf("namerd sent a bad dtab for namespace %q: %w", in.o.Namespace, err)
	}
	return d, nil
}

// RemoteDtabSource names the namespace and where namerd is (the dst).
func (in *Interpreter) RemoteDtabSource() (namespace, addr string) {
	return in.o.Namespace, in.o.Dst
}
