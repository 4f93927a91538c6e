package thrift

import (
	"context"
	"errors"
	"fmt"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// RemoteDtab reads the dtab namerd holds for the interpreter's namespace
// with the Namer service's dtab call, answered at once (an empty stamp is
// never current). namerd answers an absent namespace with the empty dtab.
// It returns by the time ctx ends, even when namerd accepts the
// connection but never answers. The router's admin page shows it.
func (in *Interpreter) RemoteDtab(ctx context.Context) (dtab.Dtab, error) {
	var res DtabRef
	var failure DtabFailure
	err := in.cli.call(ctx, MethodDtab, &DtabReq{Stamp: []byte{}, Ns: in.o.Namespace, ClientID: in.cid}, &res, &failure)
	var df *DtabFailure
	switch {
	case errors.As(err, &df):
		return nil, fmt.Errorf("namerd: %s", df.Reason)
	case err != nil:
		return nil, err
	}
	d, err := dtab.Parse(res.Dtab)
	if err != nil {
		return nil, fmt.Errorf("namerd sent a bad dtab for namespace %q: %w", in.o.Namespace, err)
	}
	return d, nil
}

// RemoteDtabSource names the namespace and where namerd is (the dst).
func (in *Interpreter) RemoteDtabSource() (namespace, addr string) {
	return in.o.Namespace, in.o.Dst
}
