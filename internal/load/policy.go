package load

import (
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// policyDoc is one Policy document as written. Scalars are pointers so that
// merging can tell "not set" from "set to the zero value": a scalar set by
// two documents is an error, lists are appended.
type policyDoc struct {
	APIVersion              string                                   `yaml:"apiVersion,required"`
	Kind                    string                                   `yaml:"kind,required"`
	Metadata                estate.Meta                              `yaml:"metadata"`
	ZoneHardening           map[estate.Exposure]estate.SecurityLevel `yaml:"zoneHardening"`
	ExposedHostMinLevel     *estate.SecurityLevel                    `yaml:"exposedHostMinLevel"`
	DedicatedClassification *estate.Classification                   `yaml:"dedicatedClassification"`
	SensitivePorts          []int                                    `yaml:"sensitivePorts"`
	Overcommit              *struct {
		CPU    *float64 `yaml:"cpu"`
		Memory *float64 `yaml:"memory"`
	} `yaml:"overcommit"`
	ResourceLimits *estate.ResourceLimits  `yaml:"resourceLimits"`
	MasterLag      *int                    `yaml:"masterLag"`
	Separate       []*estate.SeparateRule  `yaml:"separate"`
	Placement      []*estate.PlacementRule `yaml:"placement"`
	Change         *struct {
		BlockAt        *estate.Severity  `yaml:"blockAt"`
		CrossZoneMoves *estate.CrossZone `yaml:"crossZoneMoves"`
	} `yaml:"change"`
	Severity map[string]estate.Severity `yaml:"severity"`
	Disable  []string                   `yaml:"disable"`

	file string
	node *syntax.Node
}

// keyLine finds the line of a (nested) key in a document, for messages.
func keyLine(n *syntax.Node, keys ...string) int {
	line := n.Line
	for _, k := range keys {
		if n == nil || n.Kind != syntax.MapNode {
			break
		}
		for i := 0; i+1 < len(n.Items); i += 2 {
			if n.Items[i].Value == k {
				line = n.Items[i].Line
				n = n.Items[i+1]
				break
			}
		}
	}
	return line
}

// mergePolicies merges the Policy documents over the defaults and validates
// the result against the estate e.
func (l *loader) mergePolicies(e *estate.Estate) *estate.Policy {
	p := estate.DefaultPolicy()
	setBy := map[string]*policyDoc{} // scalar path -> the document that set it
	set := func(d *policyDoc, keys ...string) bool {
		path := keys[0]
		for _, k := range keys[1:] {
			path = syntax.JoinPath(path, k)
		}
		if first, ok := setBy[path]; ok {
			l.errorf(d.file, keyLine(d.node, keys...), path, "set by two Policy documents (first at %s:%d)",
				first.file, keyLine(first.node, keys...))
			return false
		}
		setBy[path] = d
		return true
	}
	portsGiven := false
	for _, d := range l.policies {
		if p.Meta.Name == "" {
			p.Meta = d.Metadata
		}
		for x, lvl := range d.ZoneHardening {
			if set(d, "zoneHardening", x.String()) {
				p.ZoneHardening[x] = lvl
			}
		}
		if d.ExposedHostMinLevel != nil && set(d, "exposedHostMinLevel") {
			p.ExposedHostMinLevel = *d.ExposedHostMinLevel
		}
		if d.DedicatedClassification != nil && set(d, "dedicatedClassification") {
			p.DedicatedClassification = *d.DedicatedClassification
		}
		if d.SensitivePorts != nil {
			// The first list given replaces the default list; later ones add.
			if !portsGiven {
				p.SensitivePorts = nil
				portsGiven = true
			}
			for i, port := range d.SensitivePorts {
				if port < 0 || port > 65535 {
					l.errorf(d.file, keyLine(d.node, "sensitivePorts"), syntax.IndexPath("sensitivePorts", i),
						"port %d is outside 0..65535", port)
				}
			}
			p.SensitivePorts = append(p.SensitivePorts, d.SensitivePorts...)
		}
		if oc := d.Overcommit; oc != nil {
			if oc.CPU != nil && set(d, "overcommit", "cpu") {
				p.Overcommit.CPU = *oc.CPU
				if *oc.CPU <= 0 {
					l.errorf(d.file, keyLine(d.node, "overcommit", "cpu"), "overcommit.cpu", "must be above 0")
				}
			}
			if oc.Memory != nil && set(d, "overcommit", "memory") {
				p.Overcommit.Memory = *oc.Memory
				if *oc.Memory <= 0 {
					l.errorf(d.file, keyLine(d.node, "overcommit", "memory"), "overcommit.memory", "must be above 0")
				}
			}
		}
		if d.ResourceLimits != nil && set(d, "resourceLimits") {
			p.ResourceLimits = *d.ResourceLimits
		}
		if d.MasterLag != nil && set(d, "masterLag") {
			p.MasterLag = *d.MasterLag
			if *d.MasterLag < 0 {
				l.errorf(d.file, keyLine(d.node, "masterLag"), "masterLag", "must not be negative")
			}
		}
		if c := d.Change; c != nil {
			if c.BlockAt != nil && set(d, "change", "blockAt") {
				p.Change.BlockAt = *c.BlockAt
			}
			if c.CrossZoneMoves != nil && set(d, "change", "crossZoneMoves") {
				p.Change.CrossZoneMoves = *c.CrossZoneMoves
			}
		}
		for id, sev := range d.Severity {
			if l.knownCheck(d, "severity", id) && set(d, "severity", id) {
				p.Severity[id] = sev
			}
		}
		for i, id := range d.Disable {
			if l.knownCheck(d, syntax.IndexPath("disable", i), id) {
				p.Disable = append(p.Disable, id)
			}
		}
		l.checkRules(d, e)
		p.Separate = append(p.Separate, d.Separate...)
		p.Placement = append(p.Placement, d.Placement...)
	}
	ruleNames := names{}
	for _, d := range l.policies {
		for i, r := range d.Separate {
			l.define(ruleNames, "rule", r.Name, syntax.IndexPath("separate", i)+".name", r.Pos)
		}
		for i, r := range d.Placement {
			l.define(ruleNames, "rule", r.Name, syntax.IndexPath("placement", i)+".name", r.Pos)
		}
	}
	return p
}

func (l *loader) knownCheck(d *policyDoc, path, id string) bool {
	if l.opts.KnownCheck == nil || l.opts.KnownCheck(id) {
		return true
	}
	key, line := path, keyLine(d.node, "disable")
	if path == "severity" {
		key, line = syntax.JoinPath(path, id), keyLine(d.node, "severity", id)
	}
	l.errorf(d.file, line, key, "unknown check %q", id)
	return false
}

// checkRules validates the separate and placement rules of one document.
func (l *loader) checkRules(d *policyDoc, e *estate.Estate) {
	hvs := make(map[string]bool, len(e.Hypervisors))
	for _, h := range e.Hypervisors {
		hvs[h.Name] = true
	}
	for i, r := range d.Separate {
		path := syntax.IndexPath("separate", i)
		if len(r.Groups) < 2 {
			l.errorf(r.File, r.Line, path+".groups", "a separate rule needs at least two groups")
		}
		for j, g := range r.Groups {
			if g.Empty() {
				l.errorf(r.File, r.Line, syntax.IndexPath(path+".groups", j), "an empty group would match every VM")
			}
		}
	}
	for i, r := range d.Placement {
		path := syntax.IndexPath("placement", i)
		if r.VMs.Empty() {
			l.errorf(r.File, r.Line, path+".vms", "an empty selector would match every VM")
		}
		hs := r.Hypervisors
		if len(hs.Labels) == 0 && hs.Cluster == "" && len(hs.Names) == 0 {
			l.errorf(r.File, r.Line, path+".hypervisors", "give labels, cluster or names")
		}
		for j, n := range hs.Names {
			if !hvs[n] {
				l.errorf(r.File, r.Line, syntax.IndexPath(path+".hypervisors.names", j), "unknown hypervisor %q", n)
			}
		}
	}
}
