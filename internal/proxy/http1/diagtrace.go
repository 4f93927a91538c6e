package http1

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

// Diagnostic tracing (spec/headers-admin.md §2.6), as Linkerd 1.x's
// DiagnosticTracer does it: a TRACE request carrying Max-Forwards and/or
// `l5d-add-context: true` is forwarded with Max-Forwards decremented, and
// each router on the way appends a text block describing its routing
// decision to the response body. With Max-Forwards 0 the router answers
// itself. A clearContext server has already dropped l5d-add-context, so
// it only honours Max-Forwards.

const (
	headerAddContext = "L5d-Add-Context"
	headerMaxFwd     = "Max-Forwards"
	// maxTraceBody bounds the response body a diagnostic trace buffers to
	// append its block; larger (or chunked) bodies are replaced by a
	// placeholder, as Linkerd does for chunked ones.
	maxTraceBody = 1 << 20
)

// diagTrace is the state of one diagnostic TRACE request.
type diagTrace struct {
	start time.Time
	// addContext says the response gets this router's block.
	addContext bool
}

// startTrace inspects a TRACE request. It returns nil when the request is
// an ordinary TRACE (routed like any other), and done when it has
// answered the request itself (a bad Max-Forwards, or Max-Forwards 0).
func (h *Handler) startTrace(w http.ResponseWriter, r *http.Request) (d *diagTrace, done bool) {
	mf, hasMF, err := maxForwards(r.Header)
	add := !h.p.ClearContext && isTrue(r.Header[headerAddContext])
	if !hasMF && !add {
		return nil, false
	}
	if err != nil {
		writeText(w, http.StatusBadRequest, "Invalid value for Max-Forwards header")
		return nil, true
	}
	d = &diagTrace{start: time.Now(), addContext: add}
	if hasMF && mf == 0 {
		if !add {
			writeText(w, http.StatusOK, "")
			return nil, true
		}
		lctx, err := proxy.ReadContext(r.Header, h.p.ClearContext)
		if err != nil {
			h.fail(w, r, err)
			return nil, true
		}
		name, err := h.p.Identifier.Identify(r)
		if err != nil {
			h.fail(w, r, err)
			return nil, true
		}
		writeText(w, http.StatusOK, "\n\n"+h.routerContext(d, name, lctx.Dtab, "", ""))
		return nil, true
	}
	if hasMF {
		r.Header[headerMaxFwd] = []string{strconv.Itoa(mf - 1)}
	}
	if !add {
		return nil, false
	}
	return d, false
}

// annotate appends this router's block to the endpoint's response.
func (h *Handler) annotate(d *diagTrace, resp *http.Response, out *http.Request, name dtab.Path) {
	var body string
	if resp.ContentLength < 0 || resp.ContentLength > maxTraceBody {
		var b strings.Builder
		for k, vs := range resp.Header {
			for _, v := range vs {
				fmt.Fprintf(&b, "%s: %s\n", k, v)
			}
		}
		fmt.Fprintf(&b, "HTTP %d - %s\nDiagnostic trace encountered a chunked or oversized response. Response content discarded.", resp.StatusCode, http.StatusText(resp.StatusCode))
		body = b.String()
	} else {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxTraceBody))
		body = string(b)
	}
	resp.Body.Close()
	var local dtab.Dtab
	if v := out.Header.Get(proxy.HeaderCtxDtab); v != "" {
		local, _ = dtab.Parse(v)
	}
	body = strings.TrimSpace(body) + "\n\n" + h.routerContext(d, name, local, out.Header.Get(proxy.HeaderDstClient), out.URL.Host)
	resp.Body = io.NopCloser(strings.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.TransferEncoding = nil
	resp.Header["Content-Length"] = []string{strconv.Itoa(len(body))}
	delete(resp.Header, "Transfer-Encoding")
}

// routerContext formats the block Linkerd's RouterContextFormatter
// writes: the router, the time spent, the logical and client names, the
// client's addresses, the endpoint chosen, and the dtab resolution that
// led from the logical name to the client. client is the bound name
// (empty: the first one the delegation reaches), selected the endpoint.
func (h *Handler) routerContext(d *diagTrace, name dtab.Path, local dtab.Dtab, client, selected string) string {
	var chain []naming.DelegateNode
	var leaf *naming.DelegateNode
	if rt := h.p.Router; rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		tree, err := naming.Delegate(ctx, rt.Interpreter(), rt.Dtab().Concat(local), name)
		cancel()
		if err == nil {
			chain, leaf = findBound(tree, client)
		}
	}
	if client == "" && leaf != nil && leaf.Bound != nil {
		client = leaf.Bound.ID.String()
	}
	var addrs []string
	if leaf != nil && leaf.Addr.State == naming.AddrBound {
		for _, a := range leaf.Addr.Addrs {
			addrs = append(addrs, a.HostPort())
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- Router: %s ---\n", h.p.Label)
	fmt.Fprintf(&b, "request duration: %d ms\n", time.Since(d.start).Milliseconds())
	fmt.Fprintf(&b, "service name: %s\n", name)
	fmt.Fprintf(&b, "client name: %s\n", client)
	fmt.Fprintf(&b, "addresses: [%s]\n", strings.Join(addrs, ", "))
	fmt.Fprintf(&b, "selected address: %s\n", selected)
	b.WriteString("dtab resolution:\n")
	for _, n := range chain {
		if n.Dentry != nil {
			fmt.Fprintf(&b, "  %s (%s)\n", n.Path, n.Dentry)
		} else {
			fmt.Fprintf(&b, "  %s\n", n.Path)
		}
	}
	return b.String()
}

// findBound returns the delegation steps from the root of tree to the
// leaf bound to client (the first leaf when client is empty), and that
// leaf; nil when there is none.
func findBound(tree naming.DelegateNode, client string) ([]naming.DelegateNode, *naming.DelegateNode) {
	var path []naming.DelegateNode
	var walk func(n *naming.DelegateNode, depth int) *naming.DelegateNode
	walk = func(n *naming.DelegateNode, depth int) *naming.DelegateNode {
		if depth > 100 {
			return nil
		}
		path = append(path, *n)
		switch n.Kind {
		case naming.DelegateLeaf:
			if n.Bound != nil && (client == "" || n.Bound.ID.String() == client) {
				return n
			}
		case naming.DelegateDelegated, naming.DelegateTransformation:
			if n.Child != nil {
				if l := walk(n.Child, depth+1); l != nil {
					return l
				}
			}
		case naming.DelegateAlt:
			for i := range n.Alts {
				if l := walk(&n.Alts[i], depth+1); l != nil {
					return l
				}
			}
		case naming.DelegateUnion:
			for i := range n.Branches {
				if l := walk(&n.Branches[i].Tree, depth+1); l != nil {
					return l
				}
			}
		}
		path = path[:len(path)-1]
		return nil
	}
	if l := walk(&tree, 0); l != nil {
		return path, l
	}
	return nil, nil
}

// maxForwards reads Max-Forwards: its value, whether it is present, and
// an error when it is not a non-negative integer.
func maxForwards(h http.Header) (n int, ok bool, err error) {
	vs := h[headerMaxFwd]
	if len(vs) == 0 {
		return 0, false, nil
	}
	n, err = strconv.Atoi(strings.TrimSpace(vs[0]))
	if err == nil && n < 0 {
		err = strconv.ErrRange
	}
	return n, true, err
}

// isTrue is Linkerd's reading of a boolean header: "true" (any case) or "1".
func isTrue(vs []string) bool {
	if len(vs) == 0 {
		return false
	}
	v := strings.TrimSpace(vs[0])
	return v == "1" || strings.EqualFold(v, "true")
}

func writeText(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
