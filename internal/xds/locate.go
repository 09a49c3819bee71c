package xds

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// place is one key or scalar of the YAML document with its path.
type place struct {
	line  int
	path  string
	value string
	kind  string // "key", or yaml.v3's tag of the value: "seq", "map", "str", "int", …
}

var (
	lineMsg      = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownField = regexp.MustCompile(`^field (\S+) not found in type`)
	badValue     = regexp.MustCompile("cannot unmarshal !!(\\w+)(?: `([^`]*)`)?")
)

// locate rewrites yaml.v3's "line N: …" errors as "path (line N): …", since a user
// edits a config by its structure (workloads[2].protocol), not by counting lines.
func locate(data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("parsing YAML: %w", err)
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return err
	}
	var places []place
	walk(&root, "", &places)
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		msgs = append(msgs, locateOne(m, places))
	}
	return errors.New(strings.Join(msgs, "; "))
}

func locateOne(msg string, places []place) string {
	sub := lineMsg.FindStringSubmatch(msg)
	if sub == nil {
		return msg
	}
	line, _ := strconv.Atoi(sub[1])
	text := sub[2]
	kind, token := "", ""
	if f := unknownField.FindStringSubmatch(text); f != nil {
		kind, token = "key", f[1]
		text = "unknown field " + strconv.Quote(f[1])
	} else if v := badValue.FindStringSubmatch(text); v != nil {
		kind, token = v[1], v[2]
	}
	best := ""
	for _, p := range places {
		if p.line != line || (kind == "key") != (p.kind == "key") {
			continue
		}
		if (kind == "" || kindMatches(kind, p.kind)) && (token == "" || p.value == token) {
			best = p.path
			break
		}
		if best == "" {
			best = p.path
		}
	}
	if best == "" {
		return msg
	}
	return fmt.Sprintf("%s (line %d): %s", best, line, text)
}

func walk(n *yaml.Node, path string, out *[]place) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walk(c, path, out)
		}
	case yaml.MappingNode:
		addCollection(n, path, out)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			*out = append(*out, place{line: k.Line, path: p, value: k.Value, kind: "key"})
			walk(v, p, out)
		}
	case yaml.SequenceNode:
		addCollection(n, path, out)
		for i, c := range n.Content {
			walk(c, fmt.Sprintf("%s[%d]", path, i), out)
		}
	case yaml.ScalarNode:
		*out = append(*out, place{line: n.Line, path: path, value: n.Value, kind: "scalar"})
	}
}

// addCollection records a list or map itself, so that "cannot unmarshal !!seq" points at
// the field that holds the list rather than at its first element.
func addCollection(n *yaml.Node, path string, out *[]place) {
	if path != "" {
		kind := "map"
		if n.Kind == yaml.SequenceNode {
			kind = "seq"
		}
		*out = append(*out, place{line: n.Line, path: path, kind: kind})
	}
}

// kindMatches compares yaml.v3's tag in an error with a node: collections by their tag,
// every scalar tag (str, int, bool, …) with a scalar.
func kindMatches(tag, kind string) bool {
	if tag == "seq" || tag == "map" {
		return tag == kind
	}
	return kind == "scalar"
}
