package check

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
)

func consistencyChecks() []*Check {
	return []*Check{
		{
			ID: "VG601", Name: "unsatisfiable-policy", Title: "Policy cannot be satisfied",
			Pillar: Availability, Severity: estate.SevHigh,
			Description: "No placement on the current hypervisors can satisfy the policy: a service needs more failure units than exist, a separate rule's groups outnumber the scope units, a placement must-rule matches no hypervisor, or a cluster's demand exceeds its capacity.",
			Remediation: "Add hypervisors, failure domains or capacity, or relax the policy (minAvailable, separate groups, placement selectors) until some placement can satisfy it.",
			Reads:       FactPlacement | FactProfile | FactResources | FactExistence,
			Run:         runUnsatisfiablePolicy,
		},
	}
}

// VG601's pillar is availability: two of its four conditions (spread and
// capacity) are about keeping services running, and the other two make the
// placement checks unfixable, which is what a person acting on it must
// know first.

// ruleRef is the `kind/name` of a policy rule (separate or placement).
func ruleRef(name string) string { return "rule/" + name }

// runUnsatisfiablePolicy is VG601. Each part is linear in the estate. A
// scoped run judges (a) the services in scope, (b) every separate rule,
// through the index's groups rather than the VMs, and (d) the clusters in
// scope; (c) reads only hypervisors and the policy, which no change alters,
// so it is left out (its evidence counts the VMs a rule matches, which a
// change can move, but no change makes such a finding appear or go, nor
// changes its message).
func runUnsatisfiablePolicy(c *Context) {
	x := c.Index
	hvs, domains := len(x.Estate.Hypervisors), 0
	if c.Scoped() {
		domains = x.FailureDomainCount()
	} else {
		seen := map[string]bool{}
		for _, h := range x.Estate.Hypervisors {
			seen[h.FailureDomain] = true
		}
		domains = len(seen)
	}
	units := func(failureDomain bool) int {
		if failureDomain {
			return domains
		}
		return hvs
	}
	unsatisfiableServices(c, units)
	unsatisfiableSeparate(c, units)
	if !c.Scoped() {
		unsatisfiablePlacement(c)
	}
	overloadedClusters(c)
}

// unitsNeeded returns how many failure units a service with n members needs
// so that the loss of any one unit leaves at least `need` members. Spread
// evenly over U units, the fullest unit holds ceil(n/U), so the loss leaves
// n - ceil(n/U). That is >= need iff ceil(n/U) <= n - need, iff
// U >= n / (n - need); and one unit is never enough, since its loss leaves
// nothing. Requires n > need >= 1.
func unitsNeeded(n, need int) int {
	return max(2, (n+(n-need)-1)/(n-need))
}

// unsatisfiableServices is VG601 (a). "minAvailable + 1 for spread" made
// exact: the service must keep at least need = minAvailable members after
// losing one unit (minAvailable 0 asks nothing, so it never fires), so it needs
// n = max(members, need + 1) members spread over unitsNeeded(n, need) units
// of its spread, counted over all hypervisors of the estate. With more
// members than need + 1, fewer units can do; a service with fewer members is
// judged as if it had need + 1, the fewest that could ever survive a loss.
func unsatisfiableServices(c *Context, units func(bool) int) {
	x := c.Index
	for _, s := range c.Services() {
		need := s.MinAvailable
		if need == 0 {
			continue
		}
		n := max(len(x.Members[s.Name]), need+1)
		needed := unitsNeeded(n, need)
		fd := s.Spread == estate.SpreadFailureDomain
		have := units(fd)
		if have >= needed {
			continue
		}
		one, many := "hypervisor", "hypervisors"
		if fd {
			one, many = "failure domain", "failure domains"
		}
		with := fmt.Sprintf("with %d members", n)
		if members := len(x.Members[s.Name]); members < n {
			with = fmt.Sprintf("even with %d members (it has %d)", n, members)
		}
		c.Emit(Finding{
			Subject: ServiceRef(s.Name),
			Pos:     s.Pos,
			Message: fmt.Sprintf("Service %s cannot keep %d members through the loss of one %s: %s that takes %d %s, and the estate has %d; add %s, add members or lower minAvailable.",
				s.Name, need, one, with, needed, many, have, many),
			Evidence: map[string]any{
				"reason":         "service needs more failure units than exist",
				"spread":         s.Spread.String(),
				"members":        len(x.Members[s.Name]),
				"minAvailable":   s.MinAvailable,
				"neededUnits":    needed,
				"availableUnits": have,
			},
		})
	}
}

// unsatisfiableSeparate is VG601 (b): a separate rule whose groups that
// match at least one VM outnumber the scope units; each such group needs a
// unit of its own.
func unsatisfiableSeparate(c *Context, units func(bool) int) {
	for _, r := range c.Policy.Separate {
		var used []string
		for g := range r.Groups {
			if matchesAny(c, &r.Groups[g]) {
				used = append(used, selectorString(&r.Groups[g]))
			}
		}
		have := units(r.Scope == estate.ScopeFailureDomain)
		if len(used) <= have {
			continue
		}
		one, many := "hypervisor", "hypervisors"
		if r.Scope == estate.ScopeFailureDomain {
			one, many = "failure domain", "failure domains"
		}
		c.Emit(Finding{
			Subject: ruleRef(r.Name),
			Pos:     r.Pos,
			Message: fmt.Sprintf("Separate rule %s keeps %d groups of VMs apart, but the estate has only %s to hold them; add %s or merge groups.",
				r.Name, len(used), countNoun(have, one, many), many),
			Evidence: map[string]any{
				"reason":         "separate rule has more groups than scope units",
				"scope":          r.Scope.String(),
				"groups":         used,
				"neededUnits":    len(used),
				"availableUnits": have,
			},
		})
	}
}

// unsatisfiablePlacement is VG601 (c): a must rule whose hypervisor selector
// matches no hypervisor. It fires whether or not a VM matches the rule yet:
// such a selector is almost always a typo, and any VM it ever matches
// breaks it.
func unsatisfiablePlacement(c *Context) {
	x := c.Index
	for _, r := range c.Policy.Placement {
		if r.Rule != estate.RuleMust {
			continue
		}
		found := false
		for _, h := range x.Estate.Hypervisors {
			if r.Hypervisors.Matches(h) {
				found = true
				break
			}
		}
		if found {
			continue
		}
		matched := 0
		for _, vm := range x.Candidates(&r.VMs) {
			if r.VMs.Matches(vm) {
				matched++
			}
		}
		c.Emit(Finding{
			Subject: ruleRef(r.Name),
			Pos:     r.Pos,
			Message: fmt.Sprintf("Placement rule %s requires its VMs to run on hypervisors that match %s, but no hypervisor does; fix the selector or label the intended hypervisors.",
				r.Name, hypervisorSelectorString(&r.Hypervisors)),
			Evidence: map[string]any{
				"reason":     "placement must-rule matches no hypervisor",
				"selector":   hypervisorSelectorString(&r.Hypervisors),
				"matchedVMs": matched,
			},
		})
	}
}

func hypervisorSelectorString(s *estate.HypervisorSelector) string {
	var parts []string
	if s.Cluster != "" {
		parts = append(parts, "cluster="+s.Cluster)
	}
	if len(s.Names) > 0 {
		parts = append(parts, "names="+strings.Join(s.Names, "|"))
	}
	if len(s.Labels) > 0 {
		parts = append(parts, selectorString(&estate.Selector{Labels: s.Labels}))
	}
	if len(parts) == 0 {
		return "{}"
	}
	return strings.Join(parts, ",")
}

// overloadedClusters is VG601 (d): a cluster whose VMs ask for more than
// its capacity allows with overcommit, even with every hypervisor up. As in
// VG303, a cluster with a hypervisor of unknown capacity is not judged, a
// dimension some capacity leaves at zero is not judged, and VMs without
// resources count as zero demand.
func overloadedClusters(c *Context) {
	oc := c.Policy.Overcommit
	for _, cl := range clusterLoads(c) {
		if !cl.known || cl.vms == 0 {
			continue
		}
		ev := map[string]any{
			"reason":              "cluster demand exceeds its capacity with overcommit",
			"vmsWithoutResources": cl.vmsWithoutResources,
			"overcommitCPU":       oc.CPU,
			"overcommitMemory":    oc.Memory,
		}
		var over []string
		if cl.cpuKnown && oc.CPU > 0 && float64(cl.demCPU) > allowed(cl.capCPU, oc.CPU) {
			a := int64(math.Floor(allowed(cl.capCPU, oc.CPU)))
			ev["vcpuDemand"], ev["vcpuAvailable"] = cl.demCPU, a
			over = append(over, fmt.Sprintf("%d vCPUs where %d are allowed", cl.demCPU, a))
		}
		if cl.memKnown && oc.Memory > 0 && float64(cl.demMem) > allowed(cl.capMem, oc.Memory) {
			a := int64(math.Floor(allowed(cl.capMem, oc.Memory)))
			ev["memoryMiBDemand"], ev["memoryMiBAvailable"] = cl.demMem, a
			over = append(over, fmt.Sprintf("%d MiB where %d are allowed", cl.demMem, a))
		}
		if over == nil {
			continue
		}
		related := make([]string, len(cl.hvs))
		for i, h := range cl.hvs {
			related[i] = HypervisorRef(h.Name)
		}
		c.Emit(Finding{
			Subject: ClusterRef(cl.name),
			Related: related,
			Message: fmt.Sprintf("Cluster %s's VMs ask for %s with overcommit, even with every hypervisor up; add capacity or move VMs out.",
				cl.name, strings.Join(over, " and ")),
			Evidence: ev,
		})
	}
}

// matchesAny reports whether sel matches at least one VM. A scoped run
// must not pass over every VM, so it looks the selector up in the index: the
// VMs of its app or owner, else of its rarest label, else it counts the VMs
// of its environment; the empty selector matches any VM. A full run passes
// over the VMs (it is linear anyway) and stops at the first match.
func matchesAny(c *Context, sel *estate.Selector) bool {
	x := c.Index
	switch {
	case sel.App != "" || sel.Owner != "":
		return slices.ContainsFunc(x.Candidates(sel), sel.Matches)
	case !c.Scoped():
		for _, vm := range x.VMs {
			if sel.Matches(vm) {
				return true
			}
		}
		return false
	case len(sel.Labels) > 0:
		var rarest []*estate.VM
		first := true
		for k, v := range sel.Labels {
			if vms := x.VMsWithLabel(k, v); first || len(vms) < len(rarest) {
				rarest, first = vms, false
			}
		}
		return slices.ContainsFunc(rarest, sel.Matches)
	case sel.Environment != 0:
		return x.VMsInEnvironment(sel.Environment) > 0
	}
	return len(x.VMs) > 0
}
