// Package syntax reads vguard's input documents, YAML or JSON, into a tree of
// position-carrying nodes, and decodes nodes strictly into Go values: unknown
// fields, wrong types, bad enum words and missing required fields are all
// reported, each with file, line and field path, and decoding goes on after
// an error so that one run reports every problem of a file.
//
// JSON has a hand-written parser of its own: estates of a hundred thousand
// VMs are written as JSON by `vguard gen` and by connectors, and a general
// YAML parser reads them an order of magnitude slower than the check budget
// allows.
package syntax

import (
	"strconv"
	"strings"
)

// Kind of a node.
type Kind uint8

const (
	ScalarNode Kind = iota + 1
	SeqNode
	MapNode
)

// Tag is the resolved type of a scalar.
type Tag uint8

const (
	StrTag Tag = iota + 1
	IntTag
	FloatTag
	BoolTag
	NullTag
)

func (t Tag) String() string {
	switch t {
	case StrTag:
		return "string"
	case IntTag:
		return "integer"
	case FloatTag:
		return "number"
	case BoolTag:
		return "boolean"
	case NullTag:
		return "null"
	}
	return "?"
}

// Node is one value of a document. A MapNode holds keys and values
// alternately in Items (keys are scalar nodes); a SeqNode holds its elements.
type Node struct {
	Kind  Kind
	Tag   Tag // scalars only
	Line  int
	Value string // scalars: the text, with quotes and escapes resolved
	Items []*Node
}

func (n *Node) describe() string {
	switch n.Kind {
	case MapNode:
		return "a mapping"
	case SeqNode:
		return "a list"
	}
	if n.Tag == StrTag {
		return "string " + strconv.Quote(n.Value)
	}
	return n.Tag.String() + " " + n.Value
}

// Get returns the value of key in a map node, or nil.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != MapNode {
		return nil
	}
	for i := 0; i+1 < len(n.Items); i += 2 {
		if n.Items[i].Value == key {
			return n.Items[i+1]
		}
	}
	return nil
}

// Error is a problem in an input document, located by file, line and the
// path of the field within the document, e.g.
// `estate.yaml:42: vms[3].nics[0].network: unknown network "vlan55"`.
type Error struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// JoinPath appends a field name to a path.
func JoinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// IndexPath appends a list index to a path.
func IndexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
