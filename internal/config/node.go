package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// nodeKind is the shape of a parsed value.
type nodeKind uint8

const (
	nullNode nodeKind = iota
	scalarNode
	mapNode
	seqNode
)

// scalarType is the resolved type of a scalar (YAML 1.2 core schema / JSON).
type scalarType uint8

const (
	strScalar scalarType = iota
	intScalar
	floatScalar
	boolScalar
)

func (k nodeKind) String() string {
	switch k {
	case nullNode:
		return "null"
	case scalarNode:
		return "a scalar"
	case mapNode:
		return "a mapping"
	default:
		return "a list"
	}
}

// node is the format-neutral document tree the decoder walks. Mapping keys
// keep their order and lines.
type node struct {
	kind   nodeKind
	line   int
	value  string // scalar text
	stype  scalarType
	keys   []string
	klines []int
	vals   []*node
	items  []*node
}

// get returns the value of key k in a mapping and the key's line.
func (n *node) get(k string) (*node, int, bool) {
	if n == nil || n.kind != mapNode {
		return nil, 0, false
	}
	for i, key := range n.keys {
		if key == k {
			return n.vals[i], n.klines[i], true
		}
	}
	return nil, 0, false
}

// describe names a node's type for error messages.
func (n *node) describe() string {
	if n == nil || n.kind == nullNode {
		return "null"
	}
	if n.kind != scalarNode {
		return n.kind.String()
	}
	switch n.stype {
	case intScalar:
		return "an integer"
	case floatScalar:
		return "a number"
	case boolScalar:
		return "a boolean"
	default:
		return "a string"
	}
}

// maxNodes bounds the expanded size of a document (alias bombs).
const maxNodes = 100_000

// isJSON reports whether text is to be read as JSON: its first non-space
// character is '{'.
func isJSON(text []byte) bool {
	t := bytes.TrimLeft(text, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// parse turns text into a node tree; nil for an empty document.
func parse(text []byte) (*node, error) {
	text = bytes.TrimPrefix(text, []byte("\ufeff")) // a UTF-8 byte order mark
	if isJSON(text) {
		return parseJSON(text)
	}
	return parseYAML(text)
}

// ---- YAML ----

func parseYAML(text []byte) (*node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlSyntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{Line: extra.Line, Msg: "more than one YAML document; a config file holds exactly one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlSyntaxError(err)
	}
	c := yamlConv{}
	return c.conv(&doc, 0)
}

// yamlSyntaxError turns "yaml: line 3: did not find expected key" into an
// Error with the line split out.
func yamlSyntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		if i := strings.Index(msg, ":"); i >= 0 {
			msg = strings.TrimSpace(msg[i+1:])
		}
	}
	return &Error{Line: line, Msg: "invalid YAML: " + msg}
}

type yamlConv struct {
	count int
}

func (c *yamlConv) conv(y *yaml.Node, depth int) (*node, error) {
	c.count++
	if c.count > maxNodes {
		return nil, &Error{Line: y.Line, Msg: "document too large (too many values or aliases)"}
	}
	if depth > 200 {
		return nil, &Error{Line: y.Line, Msg: "document nested too deeply (or a recursive alias)"}
	}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return nil, nil
		}
		return c.conv(y.Content[0], depth+1)
	case yaml.AliasNode:
		if y.Alias == nil {
			return nil, &Error{Line: y.Line, Msg: "unknown alias *" + y.Value}
		}
		return c.conv(y.Alias, depth+1)
	case yaml.ScalarNode:
		return c.scalar(y)
	case yaml.SequenceNode:
		n := &node{kind: seqNode, line: y.Line}
		for _, it := range y.Content {
			v, err := c.conv(it, depth+1)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, v)
		}
		return n, nil
	case yaml.MappingNode:
		return c.mapping(y, depth)
	}
	return nil, &Error{Line: y.Line, Msg: "unsupported YAML node"}
}

func (c *yamlConv) scalar(y *yaml.Node) (*node, error) {
	n := &node{kind: scalarNode, line: y.Line, value: y.Value}
	switch y.ShortTag() {
	case "!!null":
		return &node{kind: nullNode, line: y.Line}, nil
	case "!!str":
		n.stype = strScalar
	case "!!int":
		n.stype = intScalar
	case "!!float":
		n.stype = floatScalar
	case "!!bool":
		n.stype = boolScalar
	case "!!timestamp":
		// A date-like plain scalar; only ever meaningful as a string here.
		n.stype = strScalar
	default:
		return nil, &Error{Line: y.Line, Msg: fmt.Sprintf("unsupported YAML tag %s", y.Tag)}
	}
	return n, nil
}

func (c *yamlConv) mapping(y *yaml.Node, depth int) (*node, error) {
	if depth > 200 {
		return nil, &Error{Line: y.Line, Msg: "document nested too deeply (or a recursive alias)"}
	}
	c.count++
	if c.count > maxNodes {
		return nil, &Error{Line: y.Line, Msg: "document too large (too many values or aliases)"}
	}
	n := &node{kind: mapNode, line: y.Line}
	seen := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(y.Content); i += 2 {
		k, v := y.Content[i], y.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, &Error{Line: k.Line, Msg: "mapping keys must be plain strings"}
		}
		if prev, dup := seen[k.Value]; dup {
			return nil, &Error{Line: k.Line, Msg: fmt.Sprintf("duplicate key %q (first at line %d)", k.Value, prev)}
		}
		seen[k.Value] = k.Line
		val, err := c.conv(v, depth+1)
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, k.Value)
		n.klines = append(n.klines, k.Line)
		n.vals = append(n.vals, val)
	}
	// YAML merge keys (<<: *base): keys not set explicitly are taken from
	// the merged mappings, earlier ones first.
	for _, m := range merges {
		var srcs []*yaml.Node
		switch t := resolveAlias(m); t.Kind {
		case yaml.MappingNode:
			srcs = append(srcs, t)
		case yaml.SequenceNode:
			for _, s := range t.Content {
				srcs = append(srcs, resolveAlias(s))
			}
		}
		for _, s := range srcs {
			if s.Kind != yaml.MappingNode {
				return nil, &Error{Line: m.Line, Msg: "<< merge value must be a mapping or a list of mappings"}
			}
			mn, err := c.mapping(s, depth+1)
			if err != nil {
				return nil, err
			}
			for i, k := range mn.keys {
				if _, ok := seen[k]; ok {
					continue
				}
				seen[k] = mn.klines[i]
				n.keys = append(n.keys, k)
				n.klines = append(n.klines, mn.klines[i])
				n.vals = append(n.vals, mn.vals[i])
			}
		}
	}
	return n, nil
}

func resolveAlias(y *yaml.Node) *yaml.Node {
	for i := 0; y.Kind == yaml.AliasNode && y.Alias != nil && i < 100; i++ {
		y = y.Alias
	}
	return y
}

// ---- JSON ----

type jsonConv struct {
	dec   *json.Decoder
	text  []byte
	lines []int // offsets of line starts
	count int
}

func parseJSON(text []byte) (*node, error) {
	c := &jsonConv{dec: json.NewDecoder(bytes.NewReader(text)), text: text}
	c.dec.UseNumber()
	c.lines = append(c.lines, 0)
	for i, b := range text {
		if b == '\n' {
			c.lines = append(c.lines, i+1)
		}
	}
	n, err := c.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := c.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &Error{Line: c.line(c.dec.InputOffset()), Msg: "invalid JSON: unexpected data after the top-level value"}
	}
	return n, nil
}

// line returns the 1-based line of byte offset off.
func (c *jsonConv) line(off int64) int {
	lo, hi := 0, len(c.lines)
	for lo+1 < hi {
		mid := (lo + hi) / 2
		if int64(c.lines[mid]) <= off {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo + 1
}

func (c *jsonConv) syntax(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &Error{Line: c.line(se.Offset), Msg: "invalid JSON: " + se.Error()}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Line: len(c.lines), Msg: "invalid JSON: unexpected end of input"}
	}
	return &Error{Line: c.line(c.dec.InputOffset()), Msg: "invalid JSON: " + err.Error()}
}

func (c *jsonConv) value(depth int) (*node, error) {
	c.count++
	if c.count > maxNodes || depth > 200 {
		return nil, &Error{Line: c.line(c.dec.InputOffset()), Msg: "document too large or nested too deeply"}
	}
	start := c.dec.InputOffset()
	tok, err := c.dec.Token()
	if err != nil {
		return nil, c.syntax(err)
	}
	line := c.line(c.skipSpace(start))
	return c.fromToken(tok, line, depth)
}

// skipSpace moves an offset past separators so the line is that of the
// token, not of the preceding newline or comma.
func (c *jsonConv) skipSpace(off int64) int64 {
	for off < int64(len(c.text)) {
		switch c.text[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

func (c *jsonConv) fromToken(tok json.Token, line, depth int) (*node, error) {
	switch t := tok.(type) {
	case nil:
		return &node{kind: nullNode, line: line}, nil
	case bool:
		v := "false"
		if t {
			v = "true"
		}
		return &node{kind: scalarNode, line: line, value: v, stype: boolScalar}, nil
	case json.Number:
		st := intScalar
		if strings.ContainsAny(string(t), ".eE") {
			st = floatScalar
		}
		return &node{kind: scalarNode, line: line, value: string(t), stype: st}, nil
	case string:
		return &node{kind: scalarNode, line: line, value: t, stype: strScalar}, nil
	case json.Delim:
		switch t {
		case '[':
			n := &node{kind: seqNode, line: line}
			for c.dec.More() {
				v, err := c.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, v)
			}
			if _, err := c.dec.Token(); err != nil {
				return nil, c.syntax(err)
			}
			return n, nil
		case '{':
			n := &node{kind: mapNode, line: line}
			seen := map[string]int{}
			for c.dec.More() {
				start := c.dec.InputOffset()
				kt, err := c.dec.Token()
				if err != nil {
					return nil, c.syntax(err)
				}
				k, _ := kt.(string)
				kl := c.line(c.skipSpace(start))
				if prev, dup := seen[k]; dup {
					return nil, &Error{Line: kl, Msg: fmt.Sprintf("duplicate key %q (first at line %d)", k, prev)}
				}
				seen[k] = kl
				v, err := c.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.klines = append(n.klines, kl)
				n.vals = append(n.vals, v)
			}
			if _, err := c.dec.Token(); err != nil {
				return nil, c.syntax(err)
			}
			return n, nil
		}
	}
	return nil, &Error{Line: line, Msg: fmt.Sprintf("invalid JSON token %v", tok)}
}
