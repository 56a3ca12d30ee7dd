package libvirt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// ChangeJSON writes c as a Change document (JSON, which every reader of
// Change documents takes), for a vguard serve to judge. Keys keep the
// order of the nodes they come from.
func ChangeJSON(c *change.Change) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"apiVersion":"vguard.dev/v1","kind":"Change","metadata":{"name":`)
	writeString(&b, c.Meta.Name)
	b.WriteString(`},"operations":[`)
	for i, op := range c.Operations {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"op":`)
		writeString(&b, string(op.Op))
		for _, f := range []struct{ key, v string }{{"vm", op.VM}, {"toHypervisor", op.ToHypervisor}, {"network", op.Network},
			{"mac", op.MAC}, {"fromNetwork", op.FromNetwork}, {"toNetwork", op.ToNetwork}, {"name", op.Name}} {
			if f.v != "" {
				fmt.Fprintf(&b, `,%q:`, f.key)
				writeString(&b, f.v)
			}
		}
		if len(op.Ports) > 0 {
			ports, err := json.Marshal(op.Ports)
			if err != nil {
				return nil, err
			}
			b.WriteString(`,"ports":`)
			b.Write(ports)
		}
		if op.Sanitize {
			b.WriteString(`,"sanitize":true`)
		}
		for _, n := range []struct {
			key  string
			node *syntax.Node
		}{{"set", op.Set}, {"spec", op.Spec}} {
			if n.node != nil {
				fmt.Fprintf(&b, `,%q:`, n.key)
				if err := writeNode(&b, n.node); err != nil {
					return nil, fmt.Errorf("operation %d %s: %w", i, n.key, err)
				}
			}
		}
		b.WriteByte('}')
	}
	b.WriteString("]}\n")
	return b.Bytes(), nil
}

func writeString(b *bytes.Buffer, s string) {
	js, _ := json.Marshal(s) // a string always encodes
	b.Write(js)
}

func writeNode(b *bytes.Buffer, n *syntax.Node) error {
	switch n.Kind {
	case syntax.MapNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Items); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, n.Items[i].Value)
			b.WriteByte(':')
			if err := writeNode(b, n.Items[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case syntax.SeqNode:
		b.WriteByte('[')
		for i, it := range n.Items {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeNode(b, it); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		switch n.Tag {
		case syntax.NullTag:
			b.WriteString("null")
		case syntax.BoolTag:
			b.WriteString(strconv.FormatBool(n.Value == "true"))
		case syntax.IntTag, syntax.FloatTag:
			// A YAML number (0x1F, .inf) is not always a JSON one.
			if json.Valid([]byte(n.Value)) {
				b.WriteString(n.Value)
			} else if v, err := strconv.ParseFloat(n.Value, 64); err == nil {
				b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			} else if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				b.WriteString(strconv.FormatInt(v, 10))
			} else {
				return fmt.Errorf("number %q cannot be written as JSON", n.Value)
			}
		default:
			writeString(b, n.Value)
		}
	}
	return nil
}
