package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
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

// composer holds what the documents composed so far define.
type composer struct {
	defs     map[string]definition // "zones/NAME" -> first definition
	policies map[string]string     // canonical Policy document -> its file
	errs     load.Errors
}

type parsedSource struct {
	src  load.Source
	docs []*syntax.Node // nil: not parsed (the loader reports why)
}

// composeSources returns srcs with what connectors' documents define again
// left out (see above). Documents not under connectors/ are returned
// unchanged, first; without connectors' documents srcs are returned as
// they are, unparsed (a large upload is parsed once, by the loader).
func composeSources(srcs []load.Source) ([]load.Source, error) {
	var conns, defaults []parsedSource
	var out []load.Source
	for _, src := range srcs {
		switch {
		case !strings.HasPrefix(src.Name, connectorPrefix):
			out = append(out, src)
		case isDefaults(src.Name):
			defaults = append(defaults, parse(src))
		default:
			conns = append(conns, parse(src))
		}
	}
	if len(conns)+len(defaults) == 0 {
		return srcs, nil
	}
	// The names the connectors define: of the uploaded documents only
	// these are looked at.
	wanted := map[string]bool{}
	for _, p := range slices.Concat(conns, defaults) {
		for _, d := range p.docs {
			forItems(d, func(list string, _ int, _ *syntax.Node, key string) { wanted[list+"/"+key] = true })
		}
	}
	c := &composer{defs: map[string]definition{}, policies: map[string]string{}}
	for _, src := range out {
		docs, serr := load.ParseDocuments(src.Name, src.Data)
		if serr != nil {
			continue // the loader reports it
		}
		for _, d := range docs {
			c.record(src.Name, d, wanted)
		}
	}
	// The connectors' documents, their defaults last.
	for _, p := range slices.Concat(conns, defaults) {
		if p.docs == nil {
			out = append(out, p.src)
			continue
		}
		changed := false
		var kept []*syntax.Node
		for _, d := range p.docs {
			keep, ch := c.compose(p.src.Name, d, isDefaults(p.src.Name))
			changed = changed || ch
			if keep {
				kept = append(kept, d)
			}
		}
		if !changed {
			out = append(out, p.src)
			continue
		}
		data, err := encodeDocs(kept)
		if err != nil {
			return nil, fmt.Errorf("composing %s: %w", p.src.Name, err)
		}
		out = append(out, load.Source{Name: p.src.Name, Data: data})
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return out, nil
}

func parse(src load.Source) parsedSource {
	docs, serr := load.ParseDocuments(src.Name, src.Data)
	if serr != nil {
		return parsedSource{src: src}
	}
	return parsedSource{src: src, docs: docs}
}

// record notes the definitions (those in wanted) and the Policy of one
// uploaded document.
func (c *composer) record(file string, d *syntax.Node, wanted map[string]bool) {
	switch docKind(d) {
	case "Policy":
		canon := canonical(d, "metadata")
		if _, seen := c.policies[canon]; !seen {
			c.policies[canon] = file
		}
	case "Estate":
		forItems(d, func(list string, _ int, item *syntax.Node, key string) {
			if _, seen := c.defs[list+"/"+key]; !seen && wanted[list+"/"+key] {
				c.defs[list+"/"+key] = definition{file: file, line: item.Line, canon: canonical(item)}
			}
		})
	}
}

// compose drops from one connector document d what an earlier source
// defined identically (anything of it when weak: a connector's guesses),
// reporting conflicts. It returns whether to keep d at all and whether d
// changed.
func (c *composer) compose(file string, d *syntax.Node, weak bool) (keep, changed bool) {
	switch docKind(d) {
	case "Policy":
		canon := canonical(d, "metadata")
		if first, seen := c.policies[canon]; seen && first != file {
			return false, true // the same Policy, from a shared overlay
		}
		c.policies[canon] = file
	case "Estate":
		drop := map[*syntax.Node]bool{}
		forItems(d, func(list string, i int, item *syntax.Node, key string) {
			canon := canonical(item)
			first, seen := c.defs[list+"/"+key]
			switch {
			case !seen:
				c.defs[list+"/"+key] = definition{file: file, line: item.Line, canon: canon}
			case first.file == file:
				// Defined twice in one document: the loader's to report.
			case first.canon == canon || weak:
				// The same object, or a guess where a definition exists.
				drop[item] = true
			default:
				c.errs = append(c.errs, &syntax.Error{File: file, Line: item.Line, Path: syntax.IndexPath(list, i),
					Msg: fmt.Sprintf("%s %q is defined differently at %s:%d (the same name must have the same fields in every document)",
						strings.TrimSuffix(list, "s"), key, first.file, first.line)})
			}
		})
		if len(drop) > 0 {
			for _, list := range namedLists {
				if seq := syntaxValue(d, list); seq != nil && seq.Kind == syntax.SeqNode {
					seq.Items = slices.DeleteFunc(seq.Items, func(n *syntax.Node) bool { return drop[n] })
				}
			}
			return true, true
		}
	}
	return true, false
}

// forItems calls fn for every named item of d's lists (key is the name;
// for images NAME@VERSION).
func forItems(d *syntax.Node, fn func(list string, i int, item *syntax.Node, key string)) {
	if docKind(d) != "Estate" {
		return
	}
	for _, list := range namedLists {
		seq := syntaxValue(d, list)
		if seq == nil || seq.Kind != syntax.SeqNode {
			continue
		}
		for i, item := range seq.Items {
			name := syntaxValue(item, "name")
			if name == nil || name.Kind != syntax.ScalarNode || name.Value == "" {
				continue
			}
			key := name.Value
			if list == "images" {
				v := syntaxValue(item, "version")
				if v == nil {
					continue
				}
				key += "@" + v.Value
			}
			fn(list, i, item, key)
		}
	}
}

func docKind(d *syntax.Node) string {
	if k := syntaxValue(d, "kind"); k != nil {
		return k.Value
	}
	return ""
}

func syntaxValue(n *syntax.Node, key string) *syntax.Node {
	if n == nil || n.Kind != syntax.MapNode {
		return nil
	}
	for i := 0; i+1 < len(n.Items); i += 2 {
		if n.Items[i].Value == key {
			return n.Items[i+1]
		}
	}
	return nil
}

// canonical is n's value with map keys sorted and without the top-level
// keys skip: two definitions are the same when their values are, however
// they were written (flow or block style, key order, JSON or YAML).
func canonical(n *syntax.Node, skip ...string) string {
	var b strings.Builder
	writeCanonical(&b, n, skip)
	return b.String()
}

func writeCanonical(b *strings.Builder, n *syntax.Node, skip []string) {
	switch n.Kind {
	case syntax.ScalarNode:
		b.WriteString(strconv.Itoa(int(n.Tag)))
		b.WriteString(strconv.Quote(n.Value))
	case syntax.SeqNode:
		b.WriteByte('[')
		for _, e := range n.Items {
			writeCanonical(b, e, nil)
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case syntax.MapNode:
		idx := make([]int, 0, len(n.Items)/2)
		for i := 0; i+1 < len(n.Items); i += 2 {
			if !slices.Contains(skip, n.Items[i].Value) {
				idx = append(idx, i)
			}
		}
		slices.SortFunc(idx, func(a, c int) int { return strings.Compare(n.Items[a].Value, n.Items[c].Value) })
		b.WriteByte('{')
		for _, i := range idx {
			b.WriteString(strconv.Quote(n.Items[i].Value))
			b.WriteByte(':')
			writeCanonical(b, n.Items[i+1], nil)
			b.WriteByte(',')
		}
		b.WriteByte('}')
	}
}

// encodeDocs writes documents as YAML.
func encodeDocs(docs []*syntax.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(toYAML(d)); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var yamlTags = map[syntax.Tag]string{syntax.StrTag: "!!str", syntax.IntTag: "!!int", syntax.FloatTag: "!!float",
	syntax.BoolTag: "!!bool", syntax.NullTag: "!!null"}

func toYAML(n *syntax.Node) *yaml.Node {
	switch n.Kind {
	case syntax.ScalarNode:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: yamlTags[n.Tag], Value: n.Value}
	case syntax.SeqNode:
		out := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range n.Items {
			out.Content = append(out.Content, toYAML(e))
		}
		return out
	}
	out := &yaml.Node{Kind: yaml.MappingNode}
	for _, e := range n.Items {
		out.Content = append(out.Content, toYAML(e))
	}
	return out
}

// parseYAMLDocs and encodeYAMLDocs edit a connector's own output (see
// splitZones).
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

// yamlKind is a YAML document's kind.
func yamlKind(d *yaml.Node) string {
	if k := mapValue(d, "kind"); k != nil {
		return k.Value
	}
	return ""
}
