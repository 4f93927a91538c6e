package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// RemoteDtab reads the dtab namerd holds for the interpreter's namespace
// (GET /api/1/dtabs/<namespace>, as JSON), through the interpreter's
// connections to namerd (its dst, its TLS). It returns by the time ctx
// ends. The router's admin page shows it.
func (in *Interpreter) RemoteDtab(ctx context.Context) (dtab.Dtab, error) {
	ds, _, err := in.cli.GetDtab(ctx, in.o.Namespace)
	var ue *url.Error
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("namerd has no dtab namespace %q", in.o.Namespace)
	case errors.As(err, &ue):
		// The URL's host is a placeholder (the dst decides): leave it out.
		return nil, fmt.Errorf("GET %s: %w", dtabPath(in.o.Namespace), ue.Err)
	case err != nil:
		return nil, err
	}
	out := make(dtab.Dtab, 0, len(ds))
	for i, de := range ds {
		e, err := dtab.ParseDentry(de.Prefix + "=>" + de.Dst)
		if err != nil {
			return nil, fmt.Errorf("namerd sent a bad dentry %d (%s=>%s) for namespace %q: %w", i, de.Prefix, de.Dst, in.o.Namespace, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// RemoteDtabSource names the namespace and where namerd is (the dst).
func (in *Interpreter) RemoteDtabSource() (namespace, addr string) {
	return in.o.Namespace, in.o.Dst
}
