package identity

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// A netplan file pins a MAC in two places: `macaddress` under an
// interface's `match` (which interface this is) and `macaddress` of the
// interface itself (the MAC to give it). Dropping only the lines would
// leave cloud-init's
//
//	ens3:
//	    match:
//	        macaddress: fa:16:3e:12:34:56
//	    set-name: ens3
//
// as `match:` with no value beside `set-name:`, which netplan rejects
// ("expected mapping"; set-name needs match properties): a sealed clone
// would boot without a network. So the file is edited as YAML: the
// macaddress keys go, and a `match` left empty goes with its `set-name`,
// as virt-sysprep and cloud-init expect of an interface found afresh.

// netplanApplies reports whether a netplan file pins a MAC.
func netplanApplies(b []byte) bool {
	docs, err := yamlDocs(b)
	if err != nil {
		return linesApplies(b) // not YAML: the lines still say it
	}
	found := false
	for _, d := range docs {
		found = unpinNetplan(d, false) || found
	}
	return found
}

// netplanFix returns the netplan file without its MAC pins.
func netplanFix(b []byte) []byte {
	docs, err := yamlDocs(b)
	if err != nil {
		// Netplan cannot read it either; the pinned lines go at least.
		return linesFix(b)
	}
	changed := false
	for _, d := range docs {
		changed = unpinNetplan(d, true) || changed
	}
	if !changed {
		return b
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(yamlIndent(b))
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return linesFix(b)
		}
	}
	if err := enc.Close(); err != nil {
		return linesFix(b)
	}
	return out.Bytes()
}

var linesApplies, linesFix = linesWith("macaddress:")

// yamlDocs parses every document of b. The file is the image's, so
// anything: a panic in the parser is taken for an unreadable file.
func yamlDocs(b []byte) (docs []*yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d yaml.Node
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &d)
	}
}

// unpinNetplan finds (and with edit, removes) the MAC pins below n, and
// reports whether there were any.
func unpinNetplan(n *yaml.Node, edit bool) bool {
	found := false
	for _, c := range n.Content {
		found = unpinNetplan(c, edit) || found
	}
	if n.Kind != yaml.MappingNode {
		return found
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "macaddress" {
			found = true
			if edit {
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				i -= 2
			}
		}
	}
	if edit && found {
		if m := mapValue(n, "match"); m != nil && (m.Kind == yaml.MappingNode && len(m.Content) == 0 || m.Tag == "!!null") {
			removeKey(n, "match")
			removeKey(n, "set-name")
		}
	}
	return found
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func removeKey(n *yaml.Node, key string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content = append(n.Content[:i], n.Content[i+2:]...)
			return
		}
	}
}

// yamlIndent is the indentation of b's first indented line (cloud-init
// writes 4 spaces, netplan's examples 2), so that the rewritten file
// looks like the original.
func yamlIndent(b []byte) int {
	for line := range bytes.Lines(b) {
		n := len(line) - len(bytes.TrimLeft(line, " "))
		t := bytes.TrimSpace(line)
		if n > 0 && len(t) > 0 && t[0] != '#' && t[0] != '-' {
			return n
		}
	}
	return 4
}
