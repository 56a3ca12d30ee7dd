package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// Several connectors in one server each write a complete Estate: every
// zone their networks name (unzoned included), the networks their hosts
// share, and everything in their overlays, Policy documents too. Loaded
// side by side those would be duplicates. composeSources makes them one
// estate: a definition in a connector's document that is identical (same
// fields) to one in an earlier document, uploaded or another connector's,
// is the same object and is dropped; an identical Policy document is
// dropped whole. What a connector's defaults.yaml defines (its guesses)
// is dropped wherever anything else defines that name. A definition under the same name with other fields is a
// conflict and an error naming both sources.
//
// This is done here and not in package load on purpose: files a person
// writes keep the loader's rule that a name is defined once, and so do
// the uploaded documents among themselves and one connector's document
// within itself. Only what a connector derived is composed.

// connectorPrefix is where the connectors' documents are stored.
const connectorPrefix = "connectors/"

// defaultsDoc is the name of a connector's document of guesses: what it
// defines yields to any other definition of the same name (see
// Connector).
const defaultsDoc = "defaults.yaml"

// isDefaults tells whether a stored document is a connector's defaults.
func isDefaults(name string) bool {
	rest, ok := strings.CutPrefix(name, connectorPrefix)
	_, doc, _ := strings.Cut(rest, "/")
	return ok && doc == defaultsDoc
}

// namedLists are the Estate lists whose items are defined by name.
var namedLists = []string{"zones", "networks", "hypervisors", "datastores", "images", "vms", "services", "firewalls"}

type definition struct {
	file  string
	line  int
	canon string
}

// composeSources returns srcs with what connectors' documents define again
// left out (see above). srcs are in load order; documents not under
// connectors/ are returned unchanged.
func composeSources(srcs []load.Source) ([]load.Source, error) {
	defs := map[string]definition{} // "zones/NAME" -> first definition
	policies := map[string]string{} // canonical Policy document -> its file
	var errs load.Errors
	out := make([]load.Source, 0, len(srcs))
	// Uploaded documents first: they are recorded, never changed.
	for _, src := range srcs {
		if strings.HasPrefix(src.Name, connectorPrefix) {
			continue
		}
		docs, err := parseYAMLDocs(src.Data)
		if err != nil {
			continue // the loader reports it, with its line
		}
		for _, d := range docs {
			record(defs, policies, src.Name, d)
		}
	}
	for _, src := range srcs {
		if !strings.HasPrefix(src.Name, connectorPrefix) {
			out = append(out, src)
		}
	}
	// The connectors' documents, their defaults last.
	var conns []load.Source
	for _, src := range srcs {
		if strings.HasPrefix(src.Name, connectorPrefix) && !isDefaults(src.Name) {
			conns = append(conns, src)
		}
	}
	for _, src := range srcs {
		if isDefaults(src.Name) {
			conns = append(conns, src)
		}
	}
	for _, src := range conns {
		docs, err := parseYAMLDocs(src.Data)
		if err != nil {
			out = append(out, src)
			continue
		}
		changed := false
		var kept []*yaml.Node
		for _, d := range docs {
			keep, ch := composeDoc(defs, policies, src.Name, d, isDefaults(src.Name), &errs)
			changed = changed || ch
			if keep {
				kept = append(kept, d)
			}
		}
		if !changed {
			out = append(out, src)
			continue
		}
		data, err := encodeYAMLDocs(kept)
		if err != nil {
			return nil, fmt.Errorf("composing %s: %w", src.Name, err)
		}
		out = append(out, load.Source{Name: src.Name, Data: data})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// record notes the definitions and the Policy of one uploaded document.
func record(defs map[string]definition, policies map[string]string, file string, d *yaml.Node) {
	switch docKind(d) {
	case "Policy":
		if c, ok := canonical(d, "metadata"); ok {
			if _, seen := policies[c]; !seen {
				policies[c] = file
			}
		}
	case "Estate":
		forItems(d, func(list string, i int, item *yaml.Node, key string) bool {
			if _, seen := defs[list+"/"+key]; !seen {
				if c, ok := canonical(item); ok {
					defs[list+"/"+key] = definition{file: file, line: item.Line, canon: c}
				}
			}
			return true
		})
	}
}

// composeDoc drops from one connector document d what an earlier source
// defined identically, reporting conflicts into errs. It returns whether
// to keep d at all and whether d changed.
func composeDoc(defs map[string]definition, policies map[string]string, file string, d *yaml.Node, weak bool, errs *load.Errors) (keep, changed bool) {
	switch docKind(d) {
	case "Policy":
		c, ok := canonical(d, "metadata")
		if !ok {
			return true, false
		}
		if first, seen := policies[c]; seen && first != file {
			return false, true // the same Policy, from a shared overlay
		}
		policies[c] = file
		return true, false
	case "Estate":
		forItems(d, func(list string, i int, item *yaml.Node, key string) bool {
			c, ok := canonical(item)
			if !ok {
				return true
			}
			first, seen := defs[list+"/"+key]
			switch {
			case !seen:
				defs[list+"/"+key] = definition{file: file, line: item.Line, canon: c}
				return true
			case first.file == file:
				return true // defined twice in one document: the loader's to report
			case first.canon == c || weak:
				// The same object, or a connector's guess where a
				// definition exists.
				changed = true
				return false
			}
			*errs = append(*errs, &syntax.Error{File: file, Line: item.Line, Path: syntax.IndexPath(list, i),
				Msg: fmt.Sprintf("%s %q is defined differently at %s:%d (the same name must have the same fields in every document)",
					strings.TrimSuffix(list, "s"), key, first.file, first.line)})
			return true
		})
	}
	return true, changed
}

// forItems calls fn for every named item of d's lists (key is the name;
// for images NAME@VERSION), keeping the items fn returns true for.
func forItems(d *yaml.Node, fn func(list string, i int, item *yaml.Node, key string) bool) {
	for _, list := range namedLists {
		seq := mapValue(d, list)
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		var kept []*yaml.Node
		for i, item := range seq.Content {
			name := mapValue(item, "name")
			if item.Kind != yaml.MappingNode || name == nil || name.Kind != yaml.ScalarNode || name.Value == "" {
				kept = append(kept, item)
				continue
			}
			key := name.Value
			if list == "images" {
				v := mapValue(item, "version")
				if v == nil {
					kept = append(kept, item)
					continue
				}
				key += "@" + v.Value
			}
			if fn(list, i, item, key) {
				kept = append(kept, item)
			}
		}
		seq.Content = kept
	}
}

func docKind(d *yaml.Node) string {
	if k := mapValue(d, "kind"); k != nil {
		return k.Value
	}
	return ""
}

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

// canonical is n's value as JSON with sorted keys, without the top-level
// keys skip: two definitions are the same when their values are, however
// they were written.
func canonical(n *yaml.Node, skip ...string) (string, bool) {
	var v any
	if err := n.Decode(&v); err != nil {
		return "", false
	}
	if m, ok := v.(map[string]any); ok {
		for _, k := range skip {
			delete(m, k)
		}
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return "", false
	}
	return string(b), true
}

// jsonable turns the map[any]any a YAML map with non-string keys decodes
// to into something json.Marshal takes.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	}
	return v
}

func parseYAMLDocs(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(n.Content) == 1 {
			docs = append(docs, n.Content[0])
		}
	}
}

func encodeYAMLDocs(docs []*yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
