package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/api"
	"github.com/linnet-mesh/linnet/internal/namerd/client"
)

// dtabSubcommands are the constructors of the `linnet dtab ...` subcommands.
var dtabSubcommands []func(IO) *cobra.Command

// addDtabCommand registers a `linnet dtab` subcommand.
func addDtabCommand(f func(IO) *cobra.Command) { dtabSubcommands = append(dtabSubcommands, f) }

// namerctlExit is namerctl's exit status for every failure (os.Exit(-1)).
const namerctlExit = 255

// dtabFlags are the namerctl flags shared by the dtab commands.
type dtabFlags struct {
	baseURL    string
	configFile string
	json       bool
	timeout    time.Duration
}

func init() {
	addCommand(func(s IO) *cobra.Command {
		var f dtabFlags
		cmd := &cobra.Command{
			Use:   "dtab",
			Short: "Work with dtabs in namerd (namerctl-compatible) and evaluate them locally",
			Long: `Manage the dtabs stored in namerd as namerctl does (same commands, flags,
output and exit status), and explain a dtab offline:

  linnet dtab list                              namespaces, one per line
  linnet dtab get NAME [--pretty=false|--json]  a namespace's dtab and version
  linnet dtab create NAME FILE|-                from dtab text or get --json output
  linnet dtab update NAME FILE|- [--version V]  replace it (only if still at V)
  linnet dtab delete NAME
  linnet dtab eval --dtab TEXT PATH             how PATH resolves (no namerd)

namerd's address comes from --base-url, else $NAMERCTL_BASE_URL, else the key
base-url of a .namerctl.yaml/.yml/.json in this directory or a parent (or the
file given with --config). That URL is namerd's io.l5d.httpController
interface (port 4180 by default), not its admin server. Failures print
namerctl's message on stdout, a hint on stderr, and exit with status 255.`,
			Example: `  export NAMERCTL_BASE_URL=http://127.0.0.1:4180
  linnet dtab get internal --json > internal.json   # edit it, then:
  linnet dtab update internal internal.json          # fails (412) if it changed meanwhile
  echo '/svc => /#/io.l5d.fs;' | linnet dtab create external -`,
			// Without RunE cobra prints the help and exits 0 for a
			// mistyped subcommand (linnet dtab lst).
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return cmd.Help()
				}
				msg := fmt.Sprintf("unknown command %q for \"linnet dtab\"", args[0])
				cmd.SuggestionsMinimumDistance = 2
				if sug := cmd.SuggestionsFor(args[0]); len(sug) > 0 {
					msg += fmt.Sprintf("; did you mean %q?", sug[0])
				}
				return fail(s, errors.New(msg))
			},
		}
		cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fail(s, err) })
		pf := cmd.PersistentFlags()
		pf.StringVar(&f.baseURL, "base-url", "", "namerd HTTP API base URL, e.g. http://127.0.0.1:4180")
		pf.StringVar(&f.configFile, "config", "", "config file holding base-url (default: .namerctl.yaml searched upwards)")
		pf.BoolVar(&f.json, "json", false, "print JSON")
		pf.DurationVar(&f.timeout, "timeout", 30*time.Second, "bound on each request to namerd")
		for _, c := range []func(IO, *dtabFlags) *cobra.Command{dtabList, dtabGet, dtabCreate, dtabUpdate, dtabDelete} {
			sub := c(s, &f)
			// Flag mistakes fail like every other namerctl error.
			sub.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fail(s, err) })
			cmd.AddCommand(sub)
		}
		for _, sub := range dtabSubcommands {
			cmd.AddCommand(sub(s))
		}
		return cmd
	})
}

// fail reports err as namerctl does: the text on stdout, exit status 255.
func fail(s IO, err error) error {
	fmt.Fprintln(s.Out, err)
	return reportedExit(namerctlExit, err)
}

// failRequest is fail for a request to namerd: after namerctl's text it
// prints, on stderr, what the text leaves out (namerd's reason for a 400)
// or the likely cause and what to do. op is the subcommand, ns the
// namespace ("" for list).
func failRequest(s IO, f *dtabFlags, err error, op, ns string) error {
	if hint := requestHint(f, err, op, ns); hint != "" {
		fmt.Fprintln(s.Out, err)
		fmt.Fprintln(s.Err, "linnet: "+hint)
		return reportedExit(namerctlExit, err)
	}
	return fail(s, err)
}

// requestHint explains a failed request to namerd, or returns "".
func requestHint(f *dtabFlags, err error, op, ns string) string {
	const where = "--base-url, $NAMERCTL_BASE_URL or base-url in .namerctl.yaml"
	base, source, _ := f.base()
	var se *client.StatusError
	var ue *url.Error
	switch {
	case err.Error() == "empty base URL":
		return "no namerd address: set " + where + " to namerd's io.l5d.httpController interface, e.g. http://127.0.0.1:4180"
	case strings.HasPrefix(err.Error(), "invalid base URL"):
		return "the base URL needs a scheme and a host, e.g. http://127.0.0.1:4180"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer from %s within --timeout %s", base, f.timeout)
	case errors.As(err, &ue):
		return fmt.Sprintf("cannot reach namerd at %s (from %s): is it running, and is that its io.l5d.httpController interface?", base, source)
	case errors.Is(err, client.ErrNotFound) && op == "list":
		return fmt.Sprintf("%s does not serve namerd's API (/api/1/dtabs answered 404): point %s at the io.l5d.httpController interface (port 4180 by default), not the admin server", base, source)
	case errors.Is(err, client.ErrNotFound):
		return fmt.Sprintf("there is no namespace %q at %s (linnet dtab list shows them)", ns, base)
	case errors.As(err, &se) && se.Code == 409 && op == "create":
		return fmt.Sprintf("namespace %q already exists; replace its dtab with linnet dtab update", ns)
	case errors.As(err, &se) && se.Code == 412:
		return fmt.Sprintf("the dtab of %q changed since that version; read it again (linnet dtab get %s --json > FILE), edit FILE, and update from it", ns, ns)
	case errors.As(err, &se) && strings.TrimSpace(se.Body) != "":
		return "namerd says: " + strings.TrimSpace(se.Body)
	}
	return ""
}

// failInput is fail for a FILE argument that could not be read; dtab text
// given in its place gets a hint.
func failInput(s IO, err error, op string, args []string) error {
	fmt.Fprintln(s.Out, err)
	if errors.Is(err, fs.ErrNotExist) && strings.Contains(args[1], "=>") {
		fmt.Fprintf(s.Err, "linnet: the second argument is a file (or - for stdin), not dtab text: echo %s | linnet dtab %s %s -\n", "'"+strings.ReplaceAll(args[1], "'", `'\''`)+"'", op, args[0])
	}
	return reportedExit(namerctlExit, err)
}

// client resolves the base URL (spec/namerd-api.md §9.2) and builds a client.
func (f *dtabFlags) client() (*client.Client, error) {
	base, _, err := f.base()
	if err != nil {
		return nil, err
	}
	return client.New(base, nil)
}

// base returns the base URL and where it came from.
func (f *dtabFlags) base() (u, source string, err error) {
	if f.baseURL != "" {
		return f.baseURL, "--base-url", nil
	}
	if b := os.Getenv("NAMERCTL_BASE_URL"); b != "" {
		return b, "$NAMERCTL_BASE_URL", nil
	}
	b, err := baseURLFromFile(f.configFile)
	return b, "base-url in the .namerctl file", err
}

// baseURLFromFile reads base-url from the given file, or from the first
// .namerctl.{yaml,yml,json} found in the working directory or a parent.
func baseURLFromFile(path string) (string, error) {
	if path == "" {
		dir, err := os.Getwd()
		if err != nil {
			return "", nil
		}
	search:
		for {
			for _, ext := range []string{"yaml", "yml", "json"} {
				p := filepath.Join(dir, ".namerctl."+ext)
				if _, err := os.Stat(p); err == nil {
					path = p
					break search
				}
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return "", nil
			}
			dir = parent
		}
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	var c struct {
		BaseURL string `yaml:"base-url"`
	}
	if err := config.Load(text, &c); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return c.BaseURL, nil
}

func (f *dtabFlags) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), f.timeout)
}

func dtabList(s IO, f *dtabFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List dtab namespaces",
		Long:    `List the namespaces namerd stores, one per line (--json: a JSON array).`,
		Example: `  linnet dtab list --base-url http://127.0.0.1:4180`,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 {
				return fail(s, errors.New("list does not take arguments"))
			}
			c, err := f.client()
			if err != nil {
				return failRequest(s, f, err, "list", "")
			}
			ctx, cancel := f.context()
			defer cancel()
			names, err := c.ListDtabs(ctx)
			if err != nil {
				return failRequest(s, f, err, "list", "")
			}
			if f.json {
				if names == nil {
					names = []string{}
				}
				b, _ := api.Marshal(names)
				fmt.Fprintln(s.Out, string(b))
				return nil
			}
			for _, n := range names {
				fmt.Fprintln(s.Out, n)
			}
			return nil
		},
	}
}

// versionedDtab is namerctl's --json document.
type versionedDtab struct {
	Version string       `json:"version"`
	Dtab    []api.Dentry `json:"dtab"`
}

func dtabGet(s IO, f *dtabFlags) *cobra.Command {
	var pretty bool
	cmd := &cobra.Command{
		Use:     "get NAME",
		Aliases: []string{"cat"},
		Short:   "Show a namespace's dtab and version",
		Long: `Print a namespace's dtab: by default "# version V" (V is the ETag that
update --version takes) and one aligned dentry per line; with --pretty=false
the dentries on one line; with --json the document update accepts back,
{"version":…,"dtab":[{"prefix":…,"dst":…},…]}. A missing namespace exits 255,
which scripts use to test for existence.`,
		Example: `  linnet dtab get internal
  linnet dtab get internal --json > internal.json`,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fail(s, errors.New("get requires a name argument"))
			}
			c, err := f.client()
			if err != nil {
				return failRequest(s, f, err, "get", args[0])
			}
			ctx, cancel := f.context()
			defer cancel()
			d, version, err := c.GetDtab(ctx, args[0])
			if err != nil {
				return failRequest(s, f, err, "get", args[0])
			}
			switch {
			case f.json:
				if d == nil {
					d = []api.Dentry{}
				}
				b, _ := api.Marshal(versionedDtab{Version: version, Dtab: d})
				fmt.Fprintln(s.Out, string(b))
			case pretty:
				fmt.Fprint(s.Out, prettyDentries(version, d))
			default:
				var b strings.Builder
				for _, e := range d {
					b.WriteString(e.Prefix + "=>" + e.Dst + ";")
				}
				fmt.Fprintln(s.Out, b.String())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&pretty, "pretty", true, "one aligned dentry per line, with the version")
	return cmd
}

// prettyDentries renders namerctl's pretty form: "# version V", then each
// dentry with the => signs aligned.
func prettyDentries(version string, d []api.Dentry) string {
	var b strings.Builder
	if version != "" {
		fmt.Fprintf(&b, "# version %s\n", version)
	}
	longest := 0
	for _, e := range d {
		longest = max(longest, len(e.Prefix))
	}
	for _, e := range d {
		fmt.Fprintf(&b, "%s  %*s %s ;\n", e.Prefix, longest-len(e.Prefix)+2, "=>", e.Dst)
	}
	return b.String()
}

// readDtabInput reads FILE (or stdin for "-") and returns the request body,
// its media type and, for JSON input, the version it carries. Input starting
// with '{' or '[' is namerctl's JSON form {"version":…,"dtab":[…]}; only
// the dtab array is sent. Anything else is sent verbatim as dtab text.
func readDtabInput(s IO, path string) (body []byte, contentType, version string, err error) {
	var raw []byte
	if path == "-" {
		raw, err = io.ReadAll(s.In)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, "", "", err
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		var v versionedDtab
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, "", "", err
		}
		if v.Dtab == nil {
			v.Dtab = []api.Dentry{}
		}
		b, err := api.Marshal(v.Dtab)
		if err != nil {
			return nil, "", "", err
		}
		return b, api.MediaJSON, v.Version, nil
	}
	// namerd would answer 400 (create: with no reason); say what is wrong
	// and where, with the same parser.
	if _, err := dtab.Parse(string(raw)); err != nil {
		name := path
		if path == "-" {
			name = "<stdin>"
		}
		return nil, "", "", fmt.Errorf("%s: invalid dtab: %w", name, err)
	}
	return raw, api.MediaDtab, "", nil
}

func dtabCreate(s IO, f *dtabFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "create NAME FILE|-",
		Aliases: []string{"new"},
		Short:   "Create a namespace from a dtab file (- for stdin)",
		Long: `Create namespace NAME with the dtab in FILE (- for stdin): dtab text, which
is checked before it is sent, or the JSON that get --json prints. Fails (409)
if NAME exists; use update to replace it.`,
		Example: `  echo '/svc => /#/io.l5d.fs;' | linnet dtab create external -
  linnet dtab create internal internal.dtab`,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fail(s, errors.New("create requires a name and file path"))
			}
			c, err := f.client()
			if err != nil {
				return failRequest(s, f, err, "create", args[0])
			}
			body, ct, _, err := readDtabInput(s, args[1])
			if err != nil {
				return failInput(s, err, "create", args)
			}
			ctx, cancel := f.context()
			defer cancel()
			if err := c.CreateDtab(ctx, args[0], body, ct); err != nil {
				return failRequest(s, f, err, "create", args[0])
			}
			fmt.Fprintf(s.Out, "Created %s\n", args[0])
			return nil
		},
	}
}

func dtabUpdate(s IO, f *dtabFlags) *cobra.Command {
	var version string
	cmd := &cobra.Command{
		Use:     "update NAME FILE|-",
		Aliases: []string{"up"},
		Short:   "Replace a namespace's dtab (conditionally with --version or JSON input)",
		Long: `Replace the dtab of NAME (creating NAME if it does not exist) with FILE (-
for stdin): dtab text, which is checked before it is sent, or the JSON that
get --json prints. The update is conditional when a version is given, by
--version or by the JSON's "version" (which wins): it fails with 412 if the
dtab changed since, so two people editing at once cannot overwrite each
other. Routers following namerd switch to the new dtab within a second.`,
		Example: `  linnet dtab update internal internal.dtab
  linnet dtab update internal internal.dtab --version AAAAAAAAAAE=
  linnet dtab get internal --json > f.json && $EDITOR f.json && linnet dtab update internal f.json`,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fail(s, errors.New("update requires a name and file path"))
			}
			c, err := f.client()
			if err != nil {
				return failRequest(s, f, err, "update", args[0])
			}
			body, ct, fileVersion, err := readDtabInput(s, args[1])
			if err != nil {
				return failInput(s, err, "update", args)
			}
			v := version
			if fileVersion != "" {
				v = fileVersion // the JSON document's version wins, as in namerctl
			}
			ctx, cancel := f.context()
			defer cancel()
			if err := c.UpdateDtab(ctx, args[0], body, ct, v); err != nil {
				return failRequest(s, f, err, "update", args[0])
			}
			fmt.Fprintf(s.Out, "Updated %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "update only if the dtab is still at this version (ETag)")
	return cmd
}

func dtabDelete(s IO, f *dtabFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"del", "rm"},
		Short:   "Delete a namespace",
		Example: `  linnet dtab delete external`,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fail(s, errors.New("delete requires one argument"))
			}
			c, err := f.client()
			if err != nil {
				return failRequest(s, f, err, "delete", args[0])
			}
			ctx, cancel := f.context()
			defer cancel()
			if err := c.DeleteDtab(ctx, args[0]); err != nil {
				return failRequest(s, f, err, "delete", args[0])
			}
			fmt.Fprintf(s.Out, "Deleted %s\n", args[0])
			return nil
		},
	}
}
