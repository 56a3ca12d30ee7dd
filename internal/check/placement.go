package check

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
)

func placementChecks() []*Check {
	return []*Check{
		{
			ID: "VG401", Name: "forbidden-coresidency", Title: "Separated groups share a unit",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "VMs of two different groups of a separate rule share a scope unit (hypervisor or failure domain).",
			Remediation: "Migrate the VMs of one group to a hypervisor (or failure domain) that holds no VM of the rule's other groups.",
			Reads:       FactPlacement | FactProfile | FactExistence,
			Run:         runForbiddenCoresidency,
		},
		{
			ID: "VG402", Name: "placement-rule", Title: "VM on a hypervisor its placement rule forbids",
			Pillar: Confidentiality, Severity: estate.SevMedium,
			Description: "A VM matched by a placement rule runs on a hypervisor the rule does not allow.",
			Remediation: "Migrate the VM to a hypervisor the placement rule allows, or correct the rule's selectors.",
			Reads:       FactPlacement | FactProfile | FactExistence,
			Run:         runPlacementRule,
		},
	}
}

// The placement checks guard against what co-residency exposes (side
// channels, escapes, shared fate of tenants), so they belong to the
// confidentiality pillar; checks.md gives them their own section but the
// finding's pillar must be one of the three.

// selectorString is a short, stable text of a VM selector for evidence:
// "app=payments,labels.pci=true"; "{}" for the empty selector, which
// matches every VM.
func selectorString(s *estate.Selector) string {
	var parts []string
	if s.App != "" {
		parts = append(parts, "app="+s.App)
	}
	if s.Owner != "" {
		parts = append(parts, "owner="+s.Owner)
	}
	if s.Environment != 0 {
		parts = append(parts, "environment="+s.Environment.String())
	}
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, "labels."+k+"="+s.Labels[k])
	}
	if len(parts) == 0 {
		return "{}"
	}
	return strings.Join(parts, ",")
}

// scopeOf returns the scope unit of vm under a separate rule's scope.
func scopeOf(x *estate.Index, vm *estate.VM, scope estate.Scope) string {
	if scope == estate.ScopeFailureDomain {
		return x.FailureDomainOf(vm)
	}
	return vm.Hypervisor
}

// runForbiddenCoresidency is VG401: one finding per (rule, scope unit) where
// two groups of a separate rule have distinct VMs. A VM matched by two groups
// conflicts with itself only, which is not co-residency: a unit holding just
// that VM does not fire. The cost is rules x groups x VMs, no pairs.
//
// Two rules can fire on one unit with the same VMs: they then give one
// finding naming both, so that the finding's key (check, unit, VMs) stays
// unique and a change's introduced and resolved findings are told apart.
//
// A finding depends only on the VMs of its unit, so a scoped run judges, per
// rule, the units in scope: the VMs of each hypervisor in scope, or of each
// hypervisor of a failure domain in scope.
func runForbiddenCoresidency(c *Context) {
	x := c.Index
	if len(c.Policy.Separate) == 0 {
		return
	}
	var co coresidencies
	var all []*estate.VM
	if !c.Scoped() {
		all = x.AllVMs()
	}
	for _, r := range c.Policy.Separate {
		// byUnit[u][g] lists the VMs of group g in unit u.
		byUnit := map[string][][]string{}
		var order []string
		add := func(vms []*estate.VM) {
			for _, vm := range vms {
				for g := range r.Groups {
					if !r.Groups[g].Matches(vm) {
						continue
					}
					u := scopeOf(x, vm, r.Scope)
					groups := byUnit[u]
					if groups == nil {
						groups = make([][]string, len(r.Groups))
						byUnit[u] = groups
						order = append(order, u)
					}
					groups[g] = append(groups[g], vm.Name)
				}
			}
		}
		switch {
		case !c.Scoped():
			add(all)
		case r.Scope == estate.ScopeFailureDomain:
			for fd := range c.Scope().FailureDomains {
				for _, h := range x.HypervisorsInDomain(fd) {
					add(x.VMsOn[h.Name])
				}
			}
		default:
			for h := range c.Scope().Hypervisors {
				add(x.VMsOn[h])
			}
		}
		for _, u := range order {
			groups := byUnit[u]
			if !distinctGroups(groups) {
				continue
			}
			var related, involved []string
			for g, vms := range groups {
				if len(vms) == 0 {
					continue
				}
				involved = append(involved, selectorString(&r.Groups[g]))
				for _, name := range vms {
					related = append(related, VMRef(name))
				}
			}
			co.add(r, u, related, involved)
		}
	}
	co.emit(c)
}

// coresidencies gathers VG401's findings, merging those of several rules
// with the same key.
type coresidencies struct {
	byKey map[string]*coresidency
	order []*coresidency
}

type coresidency struct {
	scope    estate.Scope
	unit     string
	related  []string // sorted
	rules    []string
	involved [][]string // per rule, the groups present
}

func (cs *coresidencies) add(r *estate.SeparateRule, unit string, related, involved []string) {
	related = sortedUnique(related, "")
	key := r.Scope.String() + "|" + unit + "|" + strings.Join(related, ",")
	f := cs.byKey[key]
	if f == nil {
		if cs.byKey == nil {
			cs.byKey = map[string]*coresidency{}
		}
		f = &coresidency{scope: r.Scope, unit: unit, related: related}
		cs.byKey[key] = f
		cs.order = append(cs.order, f)
	}
	f.rules = append(f.rules, r.Name)
	f.involved = append(f.involved, involved)
}

func (cs *coresidencies) emit(c *Context) {
	for _, f := range cs.order {
		u := f.unit
		subject, where := HypervisorRef(u), "hypervisor "+u
		var pos estate.Pos
		if f.scope == estate.ScopeFailureDomain {
			subject, where = FailureDomainRef(u), "failure domain "+u
		} else if h := c.Index.Hypervisors[u]; h != nil {
			pos = h.Pos
		}
		ev := map[string]any{"rule": f.rules[0], "scope": f.scope.String(), "groups": f.involved[0]}
		msg := fmt.Sprintf("%s holds VMs of %d groups that separate rule %s keeps apart (%s); migrate one group's VMs elsewhere.",
			capitalize(where), len(f.involved[0]), f.rules[0], strings.Join(f.involved[0], "; "))
		if len(f.rules) > 1 {
			var parts, groups []string
			for i, name := range f.rules {
				parts = append(parts, fmt.Sprintf("%s (%s)", name, strings.Join(f.involved[i], "; ")))
				for _, g := range f.involved[i] {
					if !slices.Contains(groups, g) {
						groups = append(groups, g)
					}
				}
			}
			ev["rules"], ev["groups"] = f.rules, groups
			msg = fmt.Sprintf("%s holds VMs of groups that separate rules %s keep apart; migrate one group's VMs elsewhere.",
				capitalize(where), strings.Join(parts, ", "))
		}
		c.Emit(Finding{Subject: subject, Related: f.related, Pos: pos, Message: msg, Evidence: ev})
	}
}

// distinctGroups reports whether two different groups hold two different
// VMs: true unless fewer than two groups are present or every present group
// is the same single VM.
func distinctGroups(groups [][]string) bool {
	present, single := 0, ""
	mixed := false
	for _, vms := range groups {
		if len(vms) == 0 {
			continue
		}
		present++
		switch {
		case len(vms) > 1:
			mixed = true
		case single == "":
			single = vms[0]
		case single != vms[0]:
			mixed = true
		}
	}
	return present >= 2 && mixed
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// runPlacementRule is VG402: a VM matched by a must rule on a hypervisor the
// rule's hypervisor selector does not match, or by a mustNot rule on one it
// matches. A VM that breaks several rules gets one finding naming them all,
// so that the finding's key (check, vm, hypervisor) stays unique. Each
// rule's verdict on a hypervisor is computed once. A finding depends only on
// its VM, so a scoped run judges the VMs in scope.
func runPlacementRule(c *Context) {
	x := c.Index
	rules := c.Policy.Placement
	if len(rules) == 0 {
		return
	}
	verdict := make([]map[string]bool, len(rules)) // per rule: hypervisor -> matched
	for i := range verdict {
		verdict[i] = map[string]bool{}
	}
	var broken []string
	for _, vm := range c.VMs() {
		h := x.Hypervisors[vm.Hypervisor]
		if h == nil {
			continue // unknown hypervisor: nothing to judge
		}
		broken = broken[:0]
		for i, r := range rules {
			if !r.VMs.Matches(vm) {
				continue
			}
			m, ok := verdict[i][h.Name]
			if !ok {
				m = r.Hypervisors.Matches(h)
				verdict[i][h.Name] = m
			}
			if m != (r.Rule == estate.RuleMust) {
				broken = append(broken, r.Name)
			}
		}
		if len(broken) == 0 {
			continue
		}
		names := slices.Clone(broken)
		what := "placement rule " + names[0] + " does"
		if len(names) > 1 {
			what = "placement rules " + strings.Join(names, ", ") + " do"
		}
		c.Emit(Finding{
			Subject: VMRef(vm.Name),
			Related: []string{HypervisorRef(h.Name)},
			Pos:     vm.Pos,
			Message: fmt.Sprintf("VM %s runs on hypervisor %s, which %s not allow; migrate it to an allowed hypervisor.",
				vm.Name, h.Name, what),
			Evidence: map[string]any{"rule": names[0], "rules": names, "hypervisor": h.Name},
		})
	}
}
