package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namer/fs"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func init() {
	addDtabCommand(newDtabEvalCommand)
}

// fsPrefix is where --fs-root is mounted.
var fsPrefix = dtab.Path{"#", "io.l5d.fs"}

type dtabEvalFlags struct {
	dtab     string
	dtabFile string
	fsRoot   string
	json     bool
	timeout  time.Duration
}

func newDtabEvalCommand(s IO) *cobra.Command {
	var f dtabEvalFlags
	cmd := &cobra.Command{
		Use:   "eval [--dtab TEXT | --dtab-file FILE] [--fs-root DIR] [--json] PATH",
		Short: "Explain how a path is delegated through a dtab",
		Long: `Explain how PATH (e.g. /svc/world) is resolved through a dtab, the way
Linkerd's delegator does: every dentry that matches at each step, the namer
answers and the final addresses, then the bound tree a router would use.

--fs-root DIR mounts DIR, in io.l5d.fs format (one file per service, lines
"host port" or "host port * weight"), at /#/io.l5d.fs. The built-in /$/
namers (/$/inet/<host>/<port>, ...) are always available.
--json prints the delegator's JSON (as /delegator.json does) instead.`,
		Example: `  linnet dtab eval --dtab '/svc => /$/inet/127.0.0.1/8080' /svc/hello
  # namerd's dtab, explained offline:
  linnet dtab get internal --pretty=false > internal.dtab
  linnet dtab eval --dtab-file internal.dtab --fs-root disco /svc/world`,
		DisableFlagsInUseLine: true,
		Args:                  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDtabEval(cmd.Context(), s, f, args[0])
		},
	}
	cmd.Flags().StringVar(&f.dtab, "dtab", "", "dtab text")
	cmd.Flags().StringVar(&f.dtabFile, "dtab-file", "", "read the dtab from `FILE`")
	cmd.Flags().StringVar(&f.fsRoot, "fs-root", "", "directory in io.l5d.fs format, mounted at /#/io.l5d.fs")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the delegator JSON")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Second, "give up waiting for namers and DNS after `DURATION`")
	cmd.MarkFlagsMutuallyExclusive("dtab", "dtab-file")
	// The namerd connection flags of "linnet dtab" mean nothing here.
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		if p := c.Parent(); p != nil {
			for _, name := range []string{"base-url", "config"} {
				_ = p.PersistentFlags().MarkHidden(name)
			}
		}
		(&cobra.Command{}).HelpFunc()(c, args)
	})
	return cmd
}

func runDtabEval(ctx context.Context, s IO, f dtabEvalFlags, pathText string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	text := f.dtab
	if f.dtabFile != "" {
		b, err := os.ReadFile(f.dtabFile)
		if err != nil {
			return withExit(2, fmt.Errorf("--dtab-file: %w", err))
		}
		text = string(b)
	}
	d, err := dtab.Parse(text)
	if err != nil {
		return withExit(2, fmt.Errorf("invalid dtab: %w", err))
	}
	path, err := dtab.ParsePath(pathText)
	if err != nil {
		return withExit(2, fmt.Errorf("invalid path: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var namers []naming.MountedNamer
	if f.fsRoot != "" {
		n, err := fs.New(f.fsRoot, naming.Env{Ctx: ctx})
		if err != nil {
			return withExit(2, fmt.Errorf("--fs-root: %w", err))
		}
		defer n.Close()
		namers = append(namers, naming.MountedNamer{Prefix: fsPrefix, Namer: n})
	}
	in := naming.NewInterpreter(namers)

	n, err := naming.Delegate(ctx, in, d, path)
	if err != nil {
		return fmt.Errorf("delegating %s: %w", path, err)
	}
	if f.json {
		_, err := fmt.Fprintf(s.Out, "%s\n", naming.MarshalDelegateJSON(n))
		return err
	}
	w := &treeWriter{w: s.Out}
	w.node(&n, "", "")
	w.binding(ctx, in.Bind(d, path))
	return w.err
}

// treeWriter prints a delegation tree as indented text.
type treeWriter struct {
	w   io.Writer
	err error
}

func (t *treeWriter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

// node prints n at indent; label goes before its path (an alternative's
// number, a branch's weight).
func (t *treeWriter) node(n *naming.DelegateNode, indent, label string) {
	head := indent + label + nodePath(n)
	if n.Dentry != nil {
		head += "  [" + n.Dentry.String() + "]"
	}
	child := indent + strings.Repeat(" ", len(label)) + "  "
	switch n.Kind {
	case naming.DelegateDelegated:
		t.printf("%s\n", head)
		t.node(n.Child, child, "")
	case naming.DelegateAlt:
		t.printf("%s  alternatives, the first that binds wins:\n", head)
		for i := range n.Alts {
			t.node(&n.Alts[i], child, strconv.Itoa(i+1)+". ")
		}
	case naming.DelegateUnion:
		t.printf("%s  weighted union:\n", head)
		for i := range n.Branches {
			t.node(&n.Branches[i].Tree, child, dtab.FormatWeight(n.Branches[i].Weight)+" * ")
		}
	case naming.DelegateLeaf:
		t.printf("%s  => bound %s, residual %s\n", head, n.Bound.ID, n.Bound.Residual)
		t.printf("%s%s\n", child, addrText(n.Addr))
	case naming.DelegateNeg:
		t.printf("%s  => ~ (negative)\n", head)
	case naming.DelegateFail:
		t.printf("%s  => ! (failed)\n", head)
	case naming.DelegateEmpty:
		t.printf("%s  => $ (empty)\n", head)
	case naming.DelegateException:
		t.printf("%s  => error: %s\n", head, n.Message)
	case naming.DelegateTransformation:
		t.printf("%s  transformed by %s\n", head, n.Name)
		if n.Child != nil {
			t.node(n.Child, child, "")
		}
	}
}

func nodePath(n *naming.DelegateNode) string {
	if len(n.Path) == 0 && n.Kind == naming.DelegateNeg {
		return "~"
	}
	return n.Path.String()
}

func addrText(a naming.Addr) string {
	switch a.State {
	case naming.AddrPending:
		return "addresses: pending"
	case naming.AddrNeg:
		return "addresses: none (negative)"
	case naming.AddrFailed:
		return fmt.Sprintf("addresses: failed: %v", a.Err)
	}
	if len(a.Addrs) == 0 {
		return "addresses: none"
	}
	parts := make([]string, len(a.Addrs))
	for i, ad := range a.Addrs {
		parts[i] = ad.HostPort()
		if ad.Weight != 1 && ad.Weight != 0 {
			parts[i] += " * " + strconv.FormatFloat(ad.Weight, 'f', -1, 64)
		}
	}
	return "addresses: " + strings.Join(parts, ", ")
}

// binding prints what a router would route to: the bound tree (which can
// differ from the explanation, spec/dtab.md §10.2) and traffic shares.
func (t *treeWriter) binding(ctx context.Context, b naming.Binding) {
	a, err := awaitBinding(ctx, b)
	switch {
	case err != nil:
		t.printf("binds to: unknown (%v)\n", err)
		return
	case a.State == watch.Failed:
		t.printf("binds to: error: %v\n", a.Err)
		return
	}
	shares := naming.Shares(a.Value)
	if len(shares) == 1 {
		t.printf("binds to: %s\n", shareText(shares[0]))
		return
	}
	t.printf("binds to:\n")
	for _, sh := range shares {
		t.printf("  %s%%  %s\n", strconv.FormatFloat(sh.Share*100, 'f', 2, 64), shareText(sh))
	}
}

func shareText(s naming.Share) string {
	switch s.Kind {
	case dtab.Leaf:
		return s.Bound.ID.String() + " (residual " + s.Bound.Residual.String() + ")"
	case dtab.Neg:
		return "~ (no route)"
	case dtab.Fail:
		return "! (fails)"
	}
	return "$ (no endpoints: fails)"
}

func awaitBinding(ctx context.Context, b naming.Binding) (watch.Activity[naming.BoundTree], error) {
	ch := make(chan watch.Activity[naming.BoundTree], 1)
	cancel := b.Subscribe(func(a watch.Activity[naming.BoundTree]) {
		if a.State != watch.Pending {
			select {
			case ch <- a:
			default:
			}
		}
	})
	defer cancel()
	select {
	case a := <-ch:
		return a, nil
	case <-ctx.Done():
		return watch.Activity[naming.BoundTree]{}, errors.New("still pending")
	}
}
