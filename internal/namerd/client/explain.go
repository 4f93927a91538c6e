package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/api"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// Explain implements naming.Explainer by asking namerd
// (GET /api/1/delegate/<namespace>?path=…&dtab=…), so a router's admin
// delegator works when the router follows namerd.
func (in *Interpreter) Explain(ctx context.Context, d dtab.Dtab, path dtab.Path) (naming.DelegateNode, error) {
	q := url.Values{"path": {path.String()}, "dtab": {d.String()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.cli.URL(api.DelegatePath+"/"+in.o.Namespace, q), nil)
	if err != nil {
		return naming.DelegateNode{}, err
	}
	resp, body, err := in.cli.send(req)
	if err != nil {
		return naming.DelegateNode{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return naming.DelegateNode{}, fmt.Errorf("namerd: %w", statusError(resp, body))
	}
	var n delegateJSON
	if err := json.Unmarshal(body, &n); err != nil {
		return naming.DelegateNode{}, fmt.Errorf("namerd: bad delegate tree: %w", err)
	}
	return n.node()
}

// delegateJSON is a delegate tree node as namerd renders it
// (spec/dtab.md §10.4).
type delegateJSON struct {
	Type     string          `json:"type"`
	Path     string          `json:"path"`
	Dentry   *api.Dentry     `json:"dentry"`
	Delegate *delegateJSON   `json:"delegate"`
	Alt      []delegateJSON  `json:"alt"`
	Union    []delegateUnion `json:"union"`
	Bound    *api.Bound      `json:"bound"`
	Message  string          `json:"message"`
	Name     string          `json:"name"`
	Tree     *delegateJSON   `json:"tree"`
}

type delegateUnion struct {
	Weight float64      `json:"weight"`
	Tree   delegateJSON `json:"tree"`
}

var delegateKinds = map[string]naming.DelegateKind{
	"neg": naming.DelegateNeg, "fail": naming.DelegateFail, "empty": naming.DelegateEmpty,
	"exception": naming.DelegateException, "delegate": naming.DelegateDelegated, "leaf": naming.DelegateLeaf,
	"alt": naming.DelegateAlt, "union": naming.DelegateUnion, "transformation": naming.DelegateTransformation,
}

func (j *delegateJSON) node() (naming.DelegateNode, error) {
	kind, ok := delegateKinds[j.Type]
	if !ok {
		return naming.DelegateNode{}, fmt.Errorf("unknown delegate node type %q", j.Type)
	}
	n := naming.DelegateNode{Kind: kind, Message: j.Message, Name: j.Name}
	// "~" and "!" stand for the empty path of neg and fail nodes.
	if j.Path != "~" && j.Path != "!" && j.Path != "" {
		p, err := dtab.ParsePath(j.Path)
		if err != nil {
			return n, fmt.Errorf("path %q: %w", j.Path, err)
		}
		n.Path = p
	}
	if j.Dentry != nil {
		de, err := dtab.ParseDentry(j.Dentry.Prefix + "=>" + j.Dentry.Dst)
		if err != nil {
			return n, fmt.Errorf("dentry %s=>%s: %w", j.Dentry.Prefix, j.Dentry.Dst, err)
		}
		n.Dentry = &de
	}
	if j.Bound != nil {
		id, err := dtab.ParsePath(j.Bound.ID)
		if err != nil {
			return n, fmt.Errorf("bound id %q: %w", j.Bound.ID, err)
		}
		res, err := dtab.ParsePath(j.Bound.Path)
		if err != nil {
			return n, fmt.Errorf("residual %q: %w", j.Bound.Path, err)
		}
		n.Addr = namingAddr(j.Bound.Addr)
		n.Bound = &naming.Bound{ID: id, Residual: res, Addr: watch.Const[naming.Addr]{V: n.Addr}}
	}
	child := j.Delegate
	if kind == naming.DelegateTransformation {
		child = j.Tree
	}
	if child != nil {
		c, err := child.node()
		if err != nil {
			return n, err
		}
		n.Child = &c
	}
	for _, a := range j.Alt {
		c, err := a.node()
		if err != nil {
			return n, err
		}
		n.Alts = append(n.Alts, c)
	}
	for _, u := range j.Union {
		c, err := u.Tree.node()
		if err != nil {
			return n, err
		}
		n.Branches = append(n.Branches, naming.DelegateBranch{Weight: u.Weight, Tree: c})
	}
	if (kind == naming.DelegateDelegated) && n.Child == nil {
		return n, errors.New(`delegate node without "delegate"`)
	}
	return n, nil
}

var _ naming.Explainer = (*Interpreter)(nil)
