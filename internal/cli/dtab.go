package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-mesh/linnet/internal/config"
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
			Long: `Manage the dtabs stored in namerd, exactly as namerctl does:

  linnet dtab list                      namespaces, one per line
  linnet dtab get NAME [--pretty=false]  a namespace's dtab and its version
  linnet dtab create NAME FILE|-        create from dtab text (or get --json output)
  linnet dtab update NAME FILE|- [--version V]
  linnet dtab delete NAME

namerd's address comes from --base-url, else $NAMERCTL_BASE_URL, else the key
base-url of a .namerctl.yaml/.yml/.json in this directory or a parent (or the
file given with --config). Failures exit with status 255.`,
		}
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

// client resolves the base URL (spec/namerd-api.md §9.2) and builds a client.
func (f *dtabFlags) client() (*client.Client, error) {
	base := f.baseURL
	if base == "" {
		base = os.Getenv("NAMERCTL_BASE_URL")
	}
	if base == "" {
		var err error
		if base, err = baseURLFromFile(f.configFile); err != nil {
			return nil, err
		}
	}
	return client.New(base, nil)
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
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 {
				return fail(s, errors.New("list does not take arguments"))
			}
			c, err := f.client()
			if err != nil {
				return fail(s, err)
			}
			ctx, cancel := f.context()
			defer cancel()
			names, err := c.ListDtabs(ctx)
			if err != nil {
				return fail(s, err)
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
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fail(s, errors.New("get requires a name argument"))
			}
			c, err := f.client()
			if err != nil {
				return fail(s, err)
			}
			ctx, cancel := f.context()
			defer cancel()
			d, version, err := c.GetDtab(ctx, args[0])
			if err != nil {
				return fail(s, err)
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
	return raw, api.MediaDtab, "", nil
}

func dtabCreate(s IO, f *dtabFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "create NAME FILE|-",
		Aliases: []string{"new"},
		Short:   "Create a namespace from a dtab file (- for stdin)",
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fail(s, errors.New("create requires a name and file path"))
			}
			c, err := f.client()
			if err != nil {
				return fail(s, err)
			}
			body, ct, _, err := readDtabInput(s, args[1])
			if err != nil {
				return fail(s, err)
			}
			ctx, cancel := f.context()
			defer cancel()
			if err := c.CreateDtab(ctx, args[0], body, ct); err != nil {
				return fail(s, err)
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
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fail(s, errors.New("update requires a name and file path"))
			}
			c, err := f.client()
			if err != nil {
				return fail(s, err)
			}
			body, ct, fileVersion, err := readDtabInput(s, args[1])
			if err != nil {
				return fail(s, err)
			}
			v := version
			if fileVersion != "" {
				v = fileVersion // the JSON document's version wins, as in namerctl
			}
			ctx, cancel := f.context()
			defer cancel()
			if err := c.UpdateDtab(ctx, args[0], body, ct, v); err != nil {
				return fail(s, err)
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
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fail(s, errors.New("delete requires one argument"))
			}
			c, err := f.client()
			if err != nil {
				return fail(s, err)
			}
			ctx, cancel := f.context()
			defer cancel()
			if err := c.DeleteDtab(ctx, args[0]); err != nil {
				return fail(s, err)
			}
			fmt.Fprintf(s.Out, "Deleted %s\n", args[0])
			return nil
		},
	}
}
