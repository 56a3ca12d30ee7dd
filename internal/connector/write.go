package connector

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// The documents are written through yaml.Node trees built by reflection
// over the estate types' `yaml` tags, so that a field added to the model is
// written without a change here. A field at its zero value is left out (the
// loader then applies the default of documents.md), except the integer
// fields of types with defaults of their own (a service's minAvailable: 0
// means something), which are always written.

var (
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	defaulterType     = reflect.TypeFor[syntax.Defaulter]()
)

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// valueNode returns the YAML node of v, or nil when v is empty and should
// be left out.
func valueNode(v reflect.Value, keepZero bool) (*yaml.Node, error) {
	if v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil, nil
		}
		return valueNode(v.Elem(), true) // a set pointer is a given value
	}
	if !keepZero && v.IsZero() {
		return nil, nil
	}
	if v.Type().Implements(textMarshalerType) || reflect.PointerTo(v.Type()).Implements(textMarshalerType) {
		var tm encoding.TextMarshaler
		if v.Type().Implements(textMarshalerType) {
			tm = v.Interface().(encoding.TextMarshaler)
		} else {
			p := reflect.New(v.Type())
			p.Elem().Set(v)
			tm = p.Interface().(encoding.TextMarshaler)
		}
		b, err := tm.MarshalText()
		if err != nil {
			return nil, err
		}
		if _, err := strconv.Atoi(string(b)); err == nil {
			return scalar("!!int", string(b)), nil // a port
		}
		return scalar("!!str", string(b)), nil
	}
	switch v.Kind() {
	case reflect.String:
		return scalar("!!str", v.String()), nil
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool())), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar("!!int", strconv.FormatUint(v.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		return scalar("!!float", strconv.FormatFloat(v.Float(), 'g', -1, 64)), nil
	case reflect.Slice, reflect.Array:
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			n, err := valueNode(v.Index(i), true)
			if err != nil {
				return nil, err
			}
			if n != nil {
				seq.Content = append(seq.Content, n)
			}
		}
		if len(seq.Content) == 0 && !keepZero {
			return nil, nil
		}
		if len(seq.Content) > 0 && seq.Content[0].Kind == yaml.ScalarNode {
			seq.Style = yaml.FlowStyle // [443, 8443], [hr-app]
		}
		return seq, nil
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		for _, k := range keys {
			n, err := valueNode(v.MapIndex(k), true)
			if err != nil {
				return nil, err
			}
			m.Content = append(m.Content, scalar("!!str", fmt.Sprint(k)), n)
		}
		return m, nil
	case reflect.Struct:
		return structNode(v)
	}
	return nil, fmt.Errorf("cannot write a value of type %s", v.Type())
}

func structNode(v reflect.Value) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	t := v.Type()
	ints := reflect.PointerTo(t).Implements(defaulterType)
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		keep := ints && f.Type.Kind() == reflect.Int
		n, err := valueNode(v.Field(i), keep)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if n != nil {
			m.Content = append(m.Content, scalar("!!str", name), n)
		}
	}
	if len(m.Content) <= 4 && flat(m) {
		m.Style = yaml.FlowStyle // {name: x, exposure: public}
	}
	return m, nil
}

// flat reports whether a mapping holds only scalars (and is small enough to
// read on one line).
func flat(m *yaml.Node) bool {
	for _, c := range m.Content {
		if c.Kind != yaml.ScalarNode {
			return false
		}
	}
	return true
}

// listNode returns the sequence of the objects of a list (a slice of
// pointers to structs), or nil when it is empty.
func listNode(list any) (*yaml.Node, error) {
	return valueNode(reflect.ValueOf(list), false)
}

// syntaxToYAML converts a parsed document node (an overlay's Policy) back
// to a YAML node, keeping each scalar's type.
func syntaxToYAML(n *syntax.Node) *yaml.Node {
	switch n.Kind {
	case syntax.MapNode:
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, c := range n.Items {
			m.Content = append(m.Content, syntaxToYAML(c))
		}
		return m
	case syntax.SeqNode:
		s := &yaml.Node{Kind: yaml.SequenceNode}
		for _, c := range n.Items {
			s.Content = append(s.Content, syntaxToYAML(c))
		}
		return s
	}
	tag := "!!str"
	switch n.Tag {
	case syntax.IntTag:
		tag = "!!int"
	case syntax.FloatTag:
		tag = "!!float"
	case syntax.BoolTag:
		tag = "!!bool"
	case syntax.NullTag:
		tag = "!!null"
	}
	return scalar(tag, n.Value)
}

// EncodeVM writes one VM as a YAML mapping (the spec of a create
// operation).
func EncodeVM(vm *estate.VM) ([]byte, error) {
	n, err := valueNode(reflect.ValueOf(vm).Elem(), true)
	if err != nil {
		return nil, err
	}
	n.Style = 0
	return yaml.Marshal(n)
}
