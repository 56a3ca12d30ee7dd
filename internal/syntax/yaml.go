package syntax

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// maxAliasNodes bounds the nodes that alias expansion may produce, so that a
// "billion laughs" document fails fast instead of eating memory.
const maxAliasNodes = 100_000

// ParseYAML parses every document of a YAML stream. Empty documents are
// skipped. Aliases are expanded (within a budget) and merge keys (<<) are
// applied, so callers see plain trees.
func ParseYAML(data []byte) (docs []*Node, err error) {
	defer func() {
		// The YAML library has panicked on hostile input in the past; a bad
		// file must be an error, never a crash.
		if r := recover(); r != nil {
			docs, err = nil, &LineError{Line: 1, Msg: fmt.Sprintf("unreadable YAML (%v)", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, yamlError(err)
		}
		if doc.Kind == yaml.DocumentNode && len(doc.Content) == 0 {
			continue
		}
		c := &converter{}
		n, err := c.convert(&doc, 0)
		if err != nil {
			return nil, err
		}
		// A document of only comments reads as a null: skip it like an
		// empty one.
		if n != nil && !(n.Kind == ScalarNode && n.Tag == NullTag) {
			docs = append(docs, n)
		}
	}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &LineError{Line: line, Msg: m[2]}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	return &LineError{Line: 1, Msg: trimYAMLPrefix(msg)}
}

func trimYAMLPrefix(s string) string {
	if len(s) > 6 && s[:6] == "yaml: " {
		return s[6:]
	}
	return s
}

// converter keeps count of the nodes that aliases expanded to.
type converter struct{ aliased int }

func (c *converter) convert(y *yaml.Node, depth int) (*Node, error) {
	if depth > maxDepth {
		return nil, &LineError{Line: y.Line, Msg: fmt.Sprintf("nesting deeper than %d", maxDepth)}
	}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return nil, nil
		}
		return c.convert(y.Content[0], depth)
	case yaml.AliasNode:
		if y.Alias == nil {
			return nil, &LineError{Line: y.Line, Msg: "unknown alias"}
		}
		c.aliased += countNodes(y.Alias, maxAliasNodes)
		if c.aliased > maxAliasNodes {
			return nil, &LineError{Line: y.Line, Msg: "too many alias expansions (a YAML alias bomb?)"}
		}
		return c.convert(y.Alias, depth+1)
	case yaml.ScalarNode:
		n := &Node{Kind: ScalarNode, Line: y.Line, Value: y.Value}
		switch y.ShortTag() {
		case "!!str", "!!timestamp", "!!binary":
			n.Tag = StrTag
		case "!!int":
			n.Tag = IntTag
		case "!!float":
			n.Tag = FloatTag
		case "!!bool":
			n.Tag = BoolTag
			// YAML accepts True/TRUE and the like; decoders compare words.
			if b, err := strconv.ParseBool(y.Value); err == nil {
				n.Value = strconv.FormatBool(b)
			}
		case "!!null":
			n.Tag = NullTag
		default:
			return nil, &LineError{Line: y.Line, Msg: fmt.Sprintf("unsupported YAML tag %s", y.Tag)}
		}
		return n, nil
	case yaml.SequenceNode:
		n := &Node{Kind: SeqNode, Line: y.Line, Items: make([]*Node, 0, len(y.Content))}
		for _, item := range y.Content {
			v, err := c.convert(item, depth+1)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, v)
		}
		return n, nil
	case yaml.MappingNode:
		n := &Node{Kind: MapNode, Line: y.Line, Items: make([]*Node, 0, len(y.Content))}
		var merges []*Node
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				m, err := c.convert(v, depth+1)
				if err != nil {
					return nil, err
				}
				merges = append(merges, m)
				continue
			}
			if k.Kind != yaml.ScalarNode {
				return nil, &LineError{Line: k.Line, Msg: "a mapping key must be a plain value"}
			}
			kn, err := c.convert(k, depth+1)
			if err != nil {
				return nil, err
			}
			vn, err := c.convert(v, depth+1)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, kn, vn)
		}
		for _, m := range merges {
			if err := mergeInto(n, m); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
	return nil, &LineError{Line: y.Line, Msg: "unsupported YAML node"}
}

// mergeInto applies a merge key: keys of src (a map, or a list of maps) that
// dst lacks are added.
func mergeInto(dst, src *Node) error {
	switch src.Kind {
	case MapNode:
		for i := 0; i+1 < len(src.Items); i += 2 {
			if dst.Get(src.Items[i].Value) == nil {
				dst.Items = append(dst.Items, src.Items[i], src.Items[i+1])
			}
		}
		return nil
	case SeqNode:
		for _, m := range src.Items {
			if m.Kind != MapNode {
				return &LineError{Line: m.Line, Msg: "a merge key (<<) takes a mapping or a list of mappings"}
			}
			if err := mergeInto(dst, m); err != nil {
				return err
			}
		}
		return nil
	}
	return &LineError{Line: src.Line, Msg: "a merge key (<<) takes a mapping or a list of mappings"}
}

// countNodes counts the nodes under y, stopping early past limit.
func countNodes(y *yaml.Node, limit int) int {
	n := 1
	for _, c := range y.Content {
		if n > limit {
			return n
		}
		if c.Kind == yaml.AliasNode && c.Alias != nil {
			n += countNodes(c.Alias, limit-n)
		} else {
			n += countNodes(c, limit-n)
		}
	}
	return n
}
