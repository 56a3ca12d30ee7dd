// Package change judges a proposed change to an estate before it is made:
// it reads Change documents, applies their operations in order to the
// estate's index, judges the change-only checks (VG501, VG502) on the
// operations, and re-evaluates only the part of the estate the change can
// affect, before and after, to find the findings it introduces and
// resolves. The verdict is allow, warn or deny per the policy.
package change

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// Op is the kind of an operation.
type Op string

// The operations of documents.md.
const (
	OpMigrate   Op = "migrate"
	OpAttachNIC Op = "attach-nic"
	OpDetachNIC Op = "detach-nic"
	OpMoveNIC   Op = "move-nic"
	OpClone     Op = "clone"
	OpCreate    Op = "create"
	OpDelete    Op = "delete"
	OpUpdate    Op = "update"
	OpAddImage  Op = "add-image"
)

// opFields gives, for each operation, its required fields and the optional
// ones it accepts; any other field is an error (a typo must not pass).
var opFields = map[Op]struct{ required, optional []string }{
	OpMigrate:   {[]string{"vm", "toHypervisor"}, nil},
	OpAttachNIC: {[]string{"vm", "network"}, []string{"mac", "ports"}},
	OpDetachNIC: {[]string{"vm", "network"}, []string{"mac"}},
	OpMoveNIC:   {[]string{"vm", "fromNetwork", "toNetwork"}, nil},
	OpClone:     {[]string{"vm", "name"}, []string{"sanitize", "set"}},
	OpCreate:    {[]string{"spec"}, nil},
	OpDelete:    {[]string{"vm"}, nil},
	OpUpdate:    {[]string{"vm", "set"}, nil},
	OpAddImage:  {[]string{"spec"}, nil},
}

// Change is a proposed change: operations applied in order.
type Change struct {
	Meta       estate.Meta
	Operations []*Operation
	// File is where the change was read from; paths in it (manifests,
	// scan reports) are relative to its directory.
	File string
}

// Operation is one step of a change. Which fields it uses depends on Op.
type Operation struct {
	estate.Pos
	Op           Op                 `yaml:"op,required"`
	VM           string             `yaml:"vm"`
	ToHypervisor string             `yaml:"toHypervisor"`
	Network      string             `yaml:"network"`
	MAC          string             `yaml:"mac"`
	Ports        []estate.PortRange `yaml:"ports"`
	FromNetwork  string             `yaml:"fromNetwork"`
	ToNetwork    string             `yaml:"toNetwork"`
	Name         string             `yaml:"name"`
	Sanitize     bool               `yaml:"sanitize"`
	// Set and Spec are decoded once the operation is known: a VM patch, a
	// full VM (create) or an image (add-image).
	Set  *syntax.Node `yaml:"set"`
	Spec *syntax.Node `yaml:"spec"`

	// Index is the operation's place in the change, for messages.
	Index int `yaml:"-"`
}

func (o *Operation) path() string { return syntax.IndexPath("operations", o.Index) }

// String describes the operation in a few words, for reports.
func (o *Operation) String() string {
	switch o.Op {
	case OpMigrate:
		return fmt.Sprintf("migrate %s to %s", o.VM, o.ToHypervisor)
	case OpAttachNIC:
		return fmt.Sprintf("attach %s to %s", o.VM, o.Network)
	case OpDetachNIC:
		return fmt.Sprintf("detach %s from %s", o.VM, o.Network)
	case OpMoveNIC:
		return fmt.Sprintf("move %s from %s to %s", o.VM, o.FromNetwork, o.ToNetwork)
	case OpClone:
		return fmt.Sprintf("clone %s as %s", o.VM, o.Name)
	case OpDelete:
		return "delete " + o.VM
	case OpUpdate:
		return "update " + o.VM
	}
	return string(o.Op)
}

// changeDoc is a Change document as written.
type changeDoc struct {
	APIVersion string       `yaml:"apiVersion,required"`
	Kind       string       `yaml:"kind,required"`
	Metadata   estate.Meta  `yaml:"metadata"`
	Operations []*Operation `yaml:"operations,required"`
}

// Load reads the one Change document of a file. Every problem is reported,
// as load.Errors, with file:line and field path.
func Load(file string) (*Change, error) {
	docs, perr := load.ReadDocuments(file)
	if perr != nil {
		return nil, load.Errors{perr}
	}
	return parse(file, docs)
}

// Parse reads the one Change document of data, as if read from file.
func Parse(file string, data []byte) (*Change, error) {
	docs, perr := load.ParseDocuments(file, data)
	if perr != nil {
		return nil, load.Errors{perr}
	}
	return parse(file, docs)
}

func parse(file string, docs []*syntax.Node) (*Change, error) {
	var errs load.Errors
	errorf := func(line int, path, format string, args ...any) {
		errs = append(errs, &syntax.Error{File: file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	var doc *syntax.Node
	for _, d := range docs {
		kind := d.Get("kind")
		switch {
		case d.Kind != syntax.MapNode || kind == nil || kind.Value != "Change":
			errorf(d.Line, "kind", "want a Change document (kind: Change), as the first argument of `vguard plan`")
		case doc != nil:
			errorf(d.Line, "", "one Change document per file; this file holds several")
		default:
			doc = d
		}
	}
	if doc == nil {
		if len(errs) == 0 {
			errorf(1, "", "file holds no Change document")
		}
		return nil, errs
	}
	if av := doc.Get("apiVersion"); av == nil || av.Value != load.APIVersion {
		line := doc.Line
		if av != nil {
			line = av.Line
		}
		errorf(line, "apiVersion", "want apiVersion %s", load.APIVersion)
		return nil, errs
	}
	var cd changeDoc
	errs = append(errs, syntax.Decode(file, doc, "", &cd)...)
	// The name is the change's ticket: it goes into reports and, under
	// vguard serve, into the audit trail, where a NUL cannot be stored in
	// PostgreSQL and an escape sequence would reach whoever reads it.
	if i := strings.IndexFunc(cd.Metadata.Name, unicode.IsControl); i >= 0 {
		line := doc.Line
		if n := doc.Get("metadata").Get("name"); n != nil {
			line = n.Line
		}
		r, _ := utf8.DecodeRuneInString(cd.Metadata.Name[i:])
		errorf(line, "metadata.name", "control character %U in the change's name", r)
	}
	opsNode := doc.Get("operations")
	for i, op := range cd.Operations {
		var n *syntax.Node
		if opsNode != nil && opsNode.Kind == syntax.SeqNode && i < len(opsNode.Items) {
			n = opsNode.Items[i]
		}
		if op == nil || (n != nil && n.Kind == syntax.ScalarNode && n.Tag == syntax.NullTag) {
			continue // "- null": the decoder reported an empty entry
		}
		op.Index = i
		// Names the change gives new objects reach reports and the audit
		// trail like the change's own name.
		if n != nil && n.Kind == syntax.MapNode {
			for _, at := range []struct {
				node *syntax.Node
				path string
			}{{n.Get("name"), ".name"}, {n.Get("spec").Get("name"), ".spec.name"}} {
				if at.node == nil || at.node.Kind != syntax.ScalarNode {
					continue
				}
				if j := strings.IndexFunc(at.node.Value, unicode.IsControl); j >= 0 {
					r, _ := utf8.DecodeRuneInString(at.node.Value[j:])
					errorf(at.node.Line, op.path()+at.path, "control character %U in a name", r)
				}
			}
		}
		fields, known := opFields[op.Op]
		if !known {
			if op.Op != "" {
				ops := make([]string, 0, len(opFields))
				for o := range opFields {
					ops = append(ops, string(o))
				}
				slices.Sort(ops)
				errorf(op.Line, op.path()+".op", "unknown operation %q (want one of %s)", op.Op, strings.Join(ops, ", "))
			}
			continue
		}
		if n == nil || n.Kind != syntax.MapNode {
			continue
		}
		for _, f := range fields.required {
			if v := n.Get(f); v == nil || (v.Kind == syntax.ScalarNode && v.Tag == syntax.NullTag) {
				errorf(op.Line, op.path(), "%s needs %q", op.Op, f)
			}
		}
		for j := 0; j+1 < len(n.Items); j += 2 {
			k := n.Items[j]
			if k.Value == "op" || slices.Contains(fields.required, k.Value) || slices.Contains(fields.optional, k.Value) {
				continue
			}
			if _, isField := opFieldNames[k.Value]; isField {
				errorf(k.Line, op.path()+"."+k.Value, "%s does not take %q", op.Op, k.Value)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &Change{Meta: cd.Metadata, Operations: cd.Operations, File: file}, nil
}

// opFieldNames are the fields an operation may have at all; an unknown one
// is reported by the decoder already.
var opFieldNames = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range opFields {
		for _, n := range append(slices.Clone(f.required), f.optional...) {
			m[n] = true
		}
	}
	return m
}()

// dir is the directory relative paths of the change are read from.
func (c *Change) dir() string { return filepath.Dir(c.File) }
