package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/routerd"
)

func init() {
	addCommand(func(s IO) *cobra.Command {
		return &cobra.Command{
			Use:   "check CONFIG",
			Short: "Check a linkerd.yaml, a namerd.yaml or the ConfigMaps of a Kubernetes manifest",
			Long: `Load and validate a configuration as "linnet router" or "linnet namerd"
would, without opening a port, and report every problem with its line, or OK.

CONFIG (a path, or - for stdin) is a linkerd.yaml or a namerd.yaml, in YAML
or JSON; one with storage or interfaces and no routers is taken for a
namerd.yaml. It may also be a Kubernetes manifest (one or more documents with
apiVersion and kind, as in the Linkerd 1.x examples): then every ConfigMap
data value that is a linkerd.yaml or namerd.yaml is checked, and lines are
those of the manifest.

Servers that listen beyond loopback without clearContext get a warning.
Exits 0 when every configuration is valid, 1 otherwise.`,
			Example: `  linnet check linkerd.yaml
  linnet check k8s/linkerd.yml      # the ConfigMap l5d-config inside
  kubectl get configmap l5d-config -o jsonpath='{.data.config\.yaml}' | linnet check -`,
			Args: func(_ *cobra.Command, args []string) error {
				if len(args) != 1 {
					return fmt.Errorf("check takes one CONFIG path (or - for stdin), got %d arguments", len(args))
				}
				return nil
			},
			RunE: func(cmd *cobra.Command, args []string) error {
				return runCheck(s, args[0])
			},
		}
	})
}

func runCheck(s IO, path string) error {
	var text []byte
	var err error
	name := path
	if path == "-" {
		name = "<stdin>"
		text, err = io.ReadAll(s.In)
	} else {
		text, err = os.ReadFile(path)
	}
	if err != nil {
		return withExit(1, fmt.Errorf("reading config: %w", err))
	}
	if docs, ok := manifest(text); ok {
		return checkManifest(s, name, docs)
	}
	problems := checkConfig(s, name, "", text, func(l int) int { return l })
	if problems > 0 {
		return withExit(1, fmt.Errorf("%s: %s", name, plural(problems, "problem")))
	}
	return nil
}

// checkConfig validates one linkerd.yaml or namerd.yaml and prints its
// problems, warnings or OK, each line prefixed with the file name, the line
// (mapped by line, for text embedded in a manifest) and label. It returns
// the number of problems.
func checkConfig(s IO, name, label string, text []byte, line func(int) int) int {
	if label != "" {
		label += ": "
	}
	var problems []*config.Error
	var ok string
	var warnings []string
	if looksLikeNamerd(text) {
		var c namerd.Config
		if err := config.Load(text, &c); err != nil {
			problems = config.AsErrors(err)
		} else {
			warnings = namerd.Warnings(&c)
			ok = fmt.Sprintf("OK (namerd: storage %s, %s, %s)", c.Storage.Kind, plural(len(c.Interfaces), "interface"), plural(len(c.Namers), "namer"))
		}
	} else {
		c, err := routerd.LoadConfig(text)
		if err != nil {
			problems = config.AsErrors(err)
		} else {
			warnings = routerd.Warnings(c)
			ok = fmt.Sprintf("OK (%s, %s, %s)", plural(len(c.Routers), "router"), plural(len(c.Namers), "namer"), plural(len(c.Telemetry), "telemeter"))
		}
	}
	for _, e := range problems {
		loc := name
		if e.Line > 0 {
			loc = fmt.Sprintf("%s:%d", name, line(e.Line))
		}
		msg := e.Msg
		if e.Path != "" {
			msg = e.Path + ": " + msg
		}
		fmt.Fprintf(s.Out, "%s: %s%s\n", loc, label, msg)
	}
	if len(problems) > 0 {
		return len(problems)
	}
	for _, w := range warnings {
		fmt.Fprintf(s.Out, "%s: %swarning: %s\n", name, label, w)
	}
	fmt.Fprintf(s.Out, "%s: %s%s\n", name, label, ok)
	return 0
}

// manifest parses text as a Kubernetes manifest: YAML documents of which at
// least one has apiVersion and kind. It returns the documents' roots.
func manifest(text []byte) ([]*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var docs []*yaml.Node
	k8s := false
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false // config.Load reports the YAML error
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if mapValue(root, "apiVersion") != nil && mapValue(root, "kind") != nil {
			k8s = true
		}
		docs = append(docs, root)
	}
	return docs, k8s
}

// mapValue returns the value of key in the mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// checkManifest checks every linkerd.yaml or namerd.yaml held in a data
// value of a ConfigMap in docs.
func checkManifest(s IO, name string, docs []*yaml.Node) error {
	found, problems := 0, 0
	for _, doc := range docs {
		if k := mapValue(doc, "kind"); k == nil || k.Value != "ConfigMap" {
			continue
		}
		cm := "configmap"
		if n := mapValue(mapValue(doc, "metadata"), "name"); n != nil {
			cm += "/" + n.Value
		}
		data := mapValue(doc, "data")
		if data == nil || data.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(data.Content); i += 2 {
			key, val := data.Content[i], data.Content[i+1]
			if val.Kind != yaml.ScalarNode || !looksLikeConfig([]byte(val.Value)) {
				continue
			}
			found++
			// A literal block (|, |-) keeps its lines: line 1 of the
			// text is the line after the indicator. Other styles fold
			// lines, so problems are put on the key's line.
			line := func(l int) int { return val.Line + l }
			if val.Style&yaml.LiteralStyle == 0 {
				line = func(int) int { return key.Line }
			}
			problems += checkConfig(s, name, cm+" "+key.Value, []byte(val.Value), line)
		}
	}
	if found == 0 {
		return withExit(1, fmt.Errorf("%s is a Kubernetes manifest, and none of its ConfigMaps holds a linkerd.yaml or namerd.yaml (a data value with routers, or storage and interfaces)", name))
	}
	if problems > 0 {
		return withExit(1, fmt.Errorf("%s: %s", name, plural(problems, "problem")))
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// topKeys returns the top-level keys of a YAML or JSON mapping, or nil.
func topKeys(text []byte) map[string]any {
	var top map[string]any
	if config.Load(text, &top) != nil {
		return nil
	}
	return top
}

// looksLikeNamerd reports whether text is a namerd configuration.
func looksLikeNamerd(text []byte) bool {
	top := topKeys(text)
	_, routers := top["routers"]
	_, storage := top["storage"]
	_, interfaces := top["interfaces"]
	return !routers && (storage || interfaces)
}

// looksLikeConfig reports whether text is a linkerd.yaml or a namerd.yaml.
func looksLikeConfig(text []byte) bool {
	top := topKeys(text)
	_, routers := top["routers"]
	return routers || looksLikeNamerd(text)
}
